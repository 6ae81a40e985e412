import Runner
import RunnerOS
import Synchronization
import Testing

@Suite struct SlotQueueTests {
    final class Slot: Sendable {
        let n: Int
        init(_ n: Int) { self.n = n }
    }

    @Test func anEmptyQueueGivesNothingBeforeTheTimeout() async {
        let q = SlotQueue<Slot>(key: "k")
        #expect(await q.take(timeout: .milliseconds(20)) == nil)
    }

    @Test func theNewestFreeTokenIsOfferedFirst() async {
        let q = SlotQueue<Slot>(key: "k")
        for i in 0..<10 { q.queue(Slot(i)) }
        #expect(await q.take(timeout: .seconds(1))?.slot.n == 9)
        #expect(await q.take(timeout: .seconds(1))?.slot.n == 8)
    }

    @Test func tokensTakenDirectlyAreSkipped() async {
        let q = SlotQueue<Slot>(key: "k")
        let tokens = (0..<10).map { q.queue(Slot($0)) }
        for i in [9, 0, 5, 7] { #expect(q.acquire(tokens[i])) }
        var order: [Int] = []
        while let t = await q.take(timeout: .milliseconds(10)) { order.append(t.slot.n) }
        #expect(order == [8, 6, 4, 3, 2, 1])
    }

    @Test func aPreferredContainerAmongTheNewestIsTakenBeforeNewerOnes() async {
        let q = SlotQueue<Slot>(key: "k")
        for i in 0..<10 { q.queue(Slot(i)) }
        let evenOnly: (Slot) -> Bool = { $0.n % 2 == 0 }
        #expect(q.takeNewest(preferring: evenOnly)?.slot.n == 8)
        #expect(await q.take(timeout: .seconds(1), preferring: evenOnly)?.slot.n == 6)
        // Without a preference the order is LIFO again, around the tokens taken out of turn.
        #expect(q.takeNewest()?.slot.n == 9)
        #expect(q.takeNewest()?.slot.n == 7)
    }

    @Test func aPreferredContainerOlderThanTheNewestFewLosesToTheNewest() async {
        let q = SlotQueue<Slot>(key: "k")
        let depth = SlotQueue<Slot>.preferenceDepth
        for i in 0...depth { q.queue(Slot(i)) }  // 0 is one past the newest `depth`
        #expect(q.takeNewest(preferring: { $0.n == 0 })?.slot.n == depth)
        #expect(q.takeNewest(preferring: { _ in false })?.slot.n == depth - 1)
    }

    @Test func aTokenCanBeTakenOnlyOnce() async {
        let q = SlotQueue<Slot>(key: "k")
        let t = q.queue(Slot(1))
        #expect(q.acquire(t))
        #expect(!q.acquire(t))
        let u = q.queue(Slot(2))
        let taken = await q.take(timeout: .seconds(1))
        #expect(taken === u)
        #expect(!q.acquire(u), "the container loses the race to the call that took it")
    }

    @Test func aCallIsInLineFromItsFirstSuspensionSoAContainerOfferedThenGoesToIt() async {
        let q = SlotQueue<Slot>(key: "k")
        // The call has asked for a launch: the queue needs no other, so the call waits.
        q.move(request: .none, to: .wait)
        #expect(q.claimLaunchIfNeeded())
        // Runs on this thread up to its first suspension, as a call's task may; the container
        // offers itself before any other part of that wait has run.
        let call = Task.immediate { await q.take(timeout: .seconds(5)) }
        let offered = q.queue(Slot(1))
        #expect(q.takeNewest() == nil, "the token went to the waiting call, not to the free ones")
        let token = await call.value
        #expect(token === offered)
        #expect(!q.acquire(offered), "the container cannot take back its own token to freeze or end")
    }

    @Test func aContainerLaunchedFromInsideTheLineGoesToTheCallThoughItIsReadyBeforeTheCallWaits() async {
        let q = SlotQueue<Slot>(key: "k")
        q.move(request: .none, to: .wait)
        let offered = Mutex<SlotToken<Slot>?>(nil)
        let token = await q.take(timeout: .seconds(5)) {
            #expect(q.claimLaunchIfNeeded(), "one waiting call and no container: a launch")
            // The container starts and offers itself at once, as on another core it may.
            let t = q.queue(Slot(1))
            offered.withLock { $0 = t }
        }
        #expect(token != nil && token === offered.withLock { $0 })
        #expect(q.takeNewest() == nil)
    }

    @Test func aNewQueueIsIdle() {
        let q = SlotQueue<Slot>(key: "k")
        #expect(q.isIdle)
        q.move(request: .none, to: .wait)
        #expect(!q.isIdle)
        q.move(request: .wait, to: .exec)
        q.move(request: .exec, to: .done)
        #expect(q.isIdle)
    }

    @Test func waitersAfterTheOnlyTokenWasTakenTimeOutAndTheNextTokenIsStillOffered() async {
        let q = SlotQueue<Slot>(key: "k")
        let one = q.queue(Slot(1))
        #expect(q.acquire(one))
        await withTaskGroup(of: SlotToken<Slot>?.self) { group in
            for _ in 0..<10 { group.addTask { await q.take(timeout: .milliseconds(30)) } }
            for await r in group { #expect(r == nil) }
        }
        q.queue(Slot(2))
        #expect(await q.take(timeout: .seconds(1))?.slot.n == 2)
    }

    @Test func aWaitBegunAfterTheStartingContainerFailedEndsAtOnceSoTheCallLaunchesAnother() async {
        let q = SlotQueue<Slot>(key: "k")
        q.move(request: .none, to: .wait)
        #expect(q.claimLaunchIfNeeded())
        q.move(container: .wait, to: .start)
        #expect(!q.claimLaunchIfNeeded(), "one container is on its way")
        // Its start fails, and the waiters are woken, before the call waits.
        q.move(container: .start, to: .done)
        q.wakeWaiters()
        let ended = Mutex(false)
        let waiting = Task {
            let token = await q.take(timeout: .seconds(3600))
            ended.withLock { $0 = true }
            return token
        }
        await eventually("the wait ended without waiting for its timeout") { ended.withLock { $0 } }
        waiting.cancel()
        #expect(await waiting.value == nil)
        #expect(q.claimLaunchIfNeeded(), "the call launches another container")
    }

    @Test func aCallThatStopsWaitingTakesNoContainerFromThenOnSoTheNextCallGetsIt() async {
        let q = SlotQueue<Slot>(key: "k")
        let leaving = Task { await q.take() }
        await eventually("one call is in line") { q.lineDescription.hasSuffix("line=[waiting]") }
        let staying = Task { await q.take(timeout: .seconds(10)) }
        await eventually("two calls are in line") { q.lineDescription.hasSuffix("line=[waiting, waiting]") }
        leaving.cancel()
        let token = q.queue(Slot(3))
        #expect(await staying.value === token, "the container goes past the call that left")
        #expect(await leaving.value == nil)
    }

    /// Two threads of the test's own for the stress below: a deadlock hangs them, not the
    /// cooperative pool the rest of the suite runs on.
    final class TestThreads: TaskExecutor {
        private let jobs = Mutex<(queue: [UnownedJob], stopping: Bool)>(([], false))
        private let ready = Semaphore()

        init() {
            for n in 0..<2 { DedicatedThread.start("a test thread", name: "test-\(n)") { self.run() } }
        }

        func enqueue(_ job: consuming ExecutorJob) {
            let job = UnownedJob(job)
            jobs.withLock { $0.queue.append(job) }
            ready.post()
        }

        /// Lets both threads end once they are idle.
        func stop() {
            jobs.withLock { $0.stopping = true }
            ready.post()
            ready.post()
        }

        private func run() {
            while true {
                ready.waitForever()
                let next = jobs.withLock { j -> UnownedJob?? in
                    if !j.queue.isEmpty { return .some(j.queue.removeFirst()) }
                    return j.stopping ? .none : .some(nil)
                }
                guard let next else { return }
                next?.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
    }

    /// A call's wait that times out cancels its wait; a container offered at that moment is
    /// delivered under the queue's lock, and resuming the waiting task takes the lock its
    /// cancellation holds. A cancellation handler that took the queue's lock closed the cycle:
    /// a node with 2,000 calls in flight hung for good.
    @Test func aWaitThatEndsAsAContainerIsOfferedToItNeverHangs() async throws {
        let threads = TestThreads()
        let q = SlotQueue<Slot>(key: "k")
        let done = Atomic<Bool>(false)
        let rounds = 3000
        let stress = Task(executorPreference: threads) { () async -> (taken: Int, left: Int) in
            var (taken, left) = (0, 0)
            for round in 0..<rounds {
                await withTaskGroup(of: Bool.self) { group in
                    group.addTask { await q.take(timeout: .microseconds(Int64(round % 50))) != nil }
                    group.addTask {
                        // Offered about when the wait times out, from the other thread.
                        let until = MonotonicClock.nowNanos() &+ UInt64(round % 50) * 1000
                        while MonotonicClock.nowNanos() < until {}
                        q.queue(Slot(round))
                        return false
                    }
                    for await got in group where got { taken += 1 }
                }
                while q.takeNewest() != nil { left += 1 }
            }
            done.store(true, ordering: .releasing)
            return (taken, left)
        }
        for _ in 0..<600 where !done.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(50)) }
        guard done.load(ordering: .acquiring) else {
            // (Nothing of the queue is read here: its lock may be held by a hung thread.)
            Issue.record("the waits and offers hung")
            return  // the test's two threads stay hung; the rest of the suite does not need them
        }
        let (taken, left) = await stress.value
        threads.stop()
        // Each round's container went to its wait or stayed free: none lost, none twice.
        #expect(taken + left == rounds, "taken \(taken), left free \(left)")
        #expect(taken > 0, "some waits got their container")
        #expect(q.lineDescription == "free=0 line=[]", "no call left behind in line")
    }

    @Test func aWaitingCallGetsAContainerTheMomentItIsQueued() async {
        let q = SlotQueue<Slot>(key: "k")
        async let taken = q.take(timeout: .seconds(5))
        try? await Task.sleep(for: .milliseconds(20))
        let token = q.queue(Slot(7))
        #expect(await taken === token)
        #expect(token.isTaken)
    }

    @Test(arguments: [
        (SlotQueueStats.with(), false, "no waiters"),
        (SlotQueueStats.with(waiting: 1, starting: 10), false, "1 waiter, 10 starting"),
        (SlotQueueStats.with(waiting: 10, starting: 1), true, "10 waiters, 1 starting"),
        (SlotQueueStats.with(waiting: 10, idle: 11), false, "10 waiters, 11 idle"),
        (SlotQueueStats.with(waiting: 10, idle: 5), true, "10 waiters, 5 idle"),
        (SlotQueueStats.with(waiting: 1), true, "1 waiter and nothing else"),
        (SlotQueueStats.with(waiting: 3, paused: 3), false, "paused containers count as idle"),
        (SlotQueueStats.with(waiting: 2, waitingForResources: 2), false, "containers waiting for resources count as starting"),
    ])
    func aNewContainerIsNeededOnlyWhenWaitersOutnumberIdleAndStartingContainers(_ stats: SlotQueueStats, _ needed: Bool, _ why: String) {
        #expect(stats.isNewContainerNeeded == needed, "\(why)")
    }

    @Test func containerStatesMoveForwardAndBackOnlyBetweenIdleBusyAndPaused() {
        let q = SlotQueue<Slot>(key: "k")
        q.move(container: .none, to: .start)
        q.move(container: .start, to: .idle)
        q.move(container: .idle, to: .busy)
        q.move(container: .busy, to: .paused)
        #expect(q.stats.count(SlotQueueStats.ContainerState.paused) == 1)
        q.move(container: .paused, to: .idle)
        q.move(container: .idle, to: .start)  // refused: backwards
        #expect(q.stats.count(SlotQueueStats.ContainerState.idle) == 1)
        #expect(q.stats.count(SlotQueueStats.ContainerState.start) == 0)
        q.move(container: .idle, to: .done)
        #expect(q.isIdle)
    }
}
