import Logging
import RunnerOS
import Synchronization

/// Runs detached calls from the durable queue through the agent, oldest first, at most
/// `maxRunning` at a time, and only while no sync call waits for a container or resources
/// (sync calls keep priority). A call the node was too busy to start, or that shutdown
/// stopped before it started, goes back to the queue; every other outcome is stored as the
/// call's final record in the same step that removes it from the queue. Add it to the agent's
/// listeners so a sync call ending wakes it when it held detached calls back.
public final class AsyncCallConsumer: CallListener {
    public struct Configuration: Sendable, Equatable {
        /// FN_MAX_ASYNC_RUNNING: detached calls started at once.
        public var maxRunning = 8
        /// FN_ASYNC_CHEW_POLL_MSECS: how often the queue is looked at when nothing woke the
        /// consumer (an enqueue or a call ending wakes it at once).
        public var pollMillis = 1000
        /// FN_ASYNC_MAX_ATTEMPTS: a call claimed this many times without ending (the runner
        /// died while running it each time) ends as an error instead of running again: a call
        /// that crashes its runner must not crash it at every start.
        public var maxAttempts = 5

        public init() {}

        public static func fromEnvironment(_ values: [String: String]) throws(RunnerError) -> Configuration {
            let env = FnEnvironment(values)
            var c = Configuration()
            c.maxRunning = try env.int("FN_MAX_ASYNC_RUNNING", default: c.maxRunning, minimum: 1)
            c.pollMillis = try env.int("FN_ASYNC_CHEW_POLL_MSECS", default: c.pollMillis, minimum: 1)
            c.maxAttempts = try env.int("FN_ASYNC_MAX_ATTEMPTS", default: c.maxAttempts, minimum: 1)
            return c
        }
    }

    let configuration: Configuration
    let agent: Agent
    let queue: any CallQueue
    let logger: Logger
    private struct State {
        var running = 0
        var stopping = false
        /// Fired and replaced by `wake()`; the run loop waits on the one it saw last.
        var signal = AsyncEvent()
        /// A queued call was held back for a waiting sync call: the next call to end wakes the
        /// consumer.
        var heldBack = false
    }
    private let state = Mutex(State())
    private let stopped = AsyncEvent()

    public init(configuration: Configuration, agent: Agent, queue: any CallQueue, logger: Logger = Logger(label: "fnrunner.async")) {
        self.configuration = configuration
        self.agent = agent
        self.queue = queue
        self.logger = logger
    }

    /// Enqueues a detached call: once this returns, the call survives a crash of the runner.
    public func accept(_ call: Call) async throws(RunnerError) {
        try await queue.enqueue(call)
        wake()
    }

    /// Looks at the queue now.
    public func wake() {
        let old = state.withLock { s -> AsyncEvent in
            defer { s.signal = AsyncEvent() }
            return s.signal
        }
        old.fire()
    }

    /// Stops starting calls; `run()` returns once the running ones ended.
    public func stop() {
        state.withLock { $0.stopping = true }
        stopped.fire()
        wake()
    }

    public func beforeCall(_ call: Call) async throws(RunnerError) {}

    /// A call ended: if detached calls were held back, look again now (not for a detached call
    /// that never started: two such calls would wake each other in a loop).
    public func afterCall(_ call: Call) async throws(RunnerError) {
        if call.type == Call.detached && !call.hasStarted { return }
        if state.withLock({ $0.heldBack }) { wake() }
    }

    /// How many detached calls run now.
    public var runningCount: Int { state.withLock { $0.running } }

    /// Gives back claims a dead process left, then runs queued calls until `stop()` or until
    /// the agent shuts down.
    public func run() async {
        do {
            let n = try await queue.recoverClaims()
            if n > 0 { logger.notice("detached calls of a previous run queued again", metadata: ["count": "\(n)"]) }
        } catch {
            logger.error("cannot recover the queue's claims", metadata: ["error": "\(error)"])
        }
        await withDiscardingTaskGroup { group in
            while true {
                let signal = state.withLock { $0.signal }
                if state.withLock({ $0.stopping }) || agent.isShuttingDown || Task.isCancelled { break }
                while let next = await claimIfAdmitted() {
                    group.addTask {
                        let gaveBack = await self.execute(next)
                        self.state.withLock { s in
                            s.running -= 1
                            // Given back for lack of room: wait for a call to end (or the poll),
                            // not straight back to the same call.
                            if gaveBack { s.heldBack = true }
                        }
                        if !gaveBack { self.wake() }
                    }
                }
                let poll = Duration.milliseconds(configuration.pollMillis)
                _ = await raceWithTimeout(poll, { await Self.first(signal, self.stopped) })
            }
        }
    }

    private static func first(_ a: AsyncEvent, _ b: AsyncEvent) async -> Void? {
        await withTaskGroup(of: Void?.self) { group in
            group.addTask { await a.wait() }
            group.addTask { await b.wait() }
            let first: Void?? = await group.next()
            group.cancelAll()
            return first ?? nil
        }
    }

    /// The next queued call, claimed, if one may start now.
    private func claimIfAdmitted() async -> QueuedCall? {
        let admitted = state.withLock { s -> Bool in
            guard !s.stopping, s.running < configuration.maxRunning else { return false }
            s.running += 1
            return true
        }
        guard admitted else { return nil }
        var claimed: QueuedCall?
        // Held back first, then looked: a sync call ending in between still wakes the consumer.
        state.withLock { $0.heldBack = true }
        let syncWaiting = agent.hasWaitingSyncCalls
        if !syncWaiting { state.withLock { $0.heldBack = false } }
        if !agent.isShuttingDown && !syncWaiting {
            do {
                claimed = try await queue.claim()
            } catch {
                if !Task.isCancelled { logger.error("cannot read the call queue", metadata: ["error": "\(error)"]) }
            }
        }
        if claimed == nil { state.withLock { $0.running -= 1 } }
        return claimed
    }

    /// Runs one claimed call and stores its end, or gives it back (true) when it did not run to
    /// an end of its own: the node was too busy to start it, or shutdown stopped it.
    func execute(_ queued: QueuedCall) async -> Bool {
        if queued.attempts > configuration.maxAttempts {
            let failed = ended(
                queued,
                RunnerError(
                    .invalidState, "given up after \(queued.attempts - 1) runs that the runner did not survive", step: "run detached call"))
            await complete(failed)
            return false
        }
        let call: Call
        do {
            call = try agent.makeCall(queued.function, queued.request, type: Call.detached, traceParent: .requestHeaders)
        } catch {
            // The node can no longer run it (too big for it now, unknown format): a final error.
            await complete(ended(queued, error))
            return false
        }
        do {
            let response = try await agent.submit(call)
            call.log.write(Self.transcript(response))
        } catch {
            // Nobody is waiting for it, so a cancellation or a shutdown is not its end: it runs
            // again (at least once), as after a crash.
            let notItsEnd = (error.code == .serverBusy && !call.hasStarted) || error.code == .callCancelled || agent.isShuttingDown
            if notItsEnd {
                await retrying("give a detached call back to the queue", call.id) { () throws(RunnerError) in try await self.queue.release(call.id) }
                return true
            }
        }
        await complete(call)
        return false
    }

    /// A record for a queued call that ends without running.
    private func ended(_ queued: QueuedCall, _ error: RunnerError) -> Call {
        let call = Call(
            id: queued.id, function: queued.function, request: queued.request, type: Call.detached, logLimit: agent.configuration.maxLogBytes)
        call.markEnded(error, startedWallNanos: nil, stats: nil)
        return call
    }

    private func complete(_ call: Call) async {
        await retrying("store a detached call's end", call.id) { () throws(RunnerError) in try await self.queue.complete(call) }
    }

    /// A store write, tried up to five times over about 1.5 s (a busy or briefly full disk).
    /// If it still fails the call stays claimed, and the next start of the runner runs it again.
    private func retrying(_ what: String, _ id: String, _ write: () async throws(RunnerError) -> Void) async {
        var delay = Duration.milliseconds(100)
        for attempt in 1...5 {
            do throws(RunnerError) {
                try await write()
                return
            } catch {
                if attempt == 5 {
                    logger.error("cannot \(what)", metadata: ["call_id": "\(id)", "error": "\(error)"])
                    return
                }
            }
            try? await Task.sleep(for: delay)
            delay *= 2
        }
    }

    /// Nobody waits for a detached call's answer: it goes to the call's log, as Fn did.
    static func transcript(_ r: FunctionResponse) -> [UInt8] {
        var head = "HTTP/1.1 \(r.status)\r\n"
        for h in r.headers { head += "\(h.name): \(h.value)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + r.body
    }
}
