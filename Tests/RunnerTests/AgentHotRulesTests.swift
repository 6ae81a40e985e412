@testable import Runner
import RunnerOS
import Testing

/// Fn's hot-container rules on the fake driver: reuse, launching, freezing, idle timeouts.
struct AgentHotRulesTests {
    typealias H = FakeAgentHarness

    @Test func aSecondCallReusesTheIdleContainer() async throws {
        try await H.withAgent { agent, driver, _ in
            let first = try await agent.submit(H.function(), H.request("one"))
            let second = try await agent.submit(H.function(), H.request("two"))
            #expect(first.header("x-container") == second.header("x-container"))
            #expect(driver.starts == 1)
            #expect(H.text(second).hasSuffix(":two"))
        }
    }

    @Test func hopByHopHeadersOfTheFunctionAreDropped() async throws {
        try await H.withAgent { agent, _, _ in
            let r = try await agent.submit(H.function(), H.request("x"))
            #expect(r.header("connection") == nil)
            #expect(r.header("x-container") != nil)
        }
    }

    /// Two calls at once, so two containers; the one whose call ended last is the newest idle.
    /// Returns the names of the container that finished first and of the one that finished last.
    func twoIdleContainers(_ agent: Agent, _ driver: FakeDriver, _ clock: ManualClock) async throws -> (older: String, newer: String) {
        async let a = agent.submit(H.function(), H.request("sleep:100"))
        async let b = agent.submit(H.function(), H.request("sleep:300"))
        await advance(clock, by: .milliseconds(10), until: "both calls ended") {
            driver.containers.reduce(0) { $0 + $1.calls } == 2 && H.running(agent, H.function()) == 0
        }
        let (fast, slow) = try await (a, b)
        func container(_ r: FunctionResponse) -> String { String(H.text(r).split(separator: ":").first ?? "") }
        return (container(fast), container(slow))
    }

    @Test func theNewestIdleContainerServesTheNextCall() async throws {
        try await H.withAgent { agent, driver, clock in
            let (_, newer) = try await twoIdleContainers(agent, driver, clock)
            let next = try await agent.submit(H.function(), H.request("next"))
            #expect(next.header("x-container") == newer)
            #expect(driver.starts == 2)
        }
    }

    @Test func anIdleContainerLocalToTheCallerServesTheNextCallBeforeANewerOne() async throws {
        try await H.withAgent { agent, driver, clock in
            let (older, _) = try await twoIdleContainers(agent, driver, clock)
            try #require(driver.containers.first { $0.name == older }).markLocalToCaller()
            let next = try await agent.submit(H.function(), H.request("next"))
            #expect(next.header("x-container") == older)
            #expect(driver.starts == 2)
        }
    }

    @Test func waitersBeyondIdleAndStartingContainersLaunchMoreAndNoMore() async throws {
        let gate = AsyncEvent()
        try await H.withAgent(onStart: { _, _ throws(RunnerError) in _ = await gate.wait() }) { agent, driver, clock in
            async let one = agent.submit(H.function(), H.request("1"))
            await eventually("the first start began") { driver.starts == 1 }
            // Polls come and go; one waiter with one container starting launches nothing more.
            await step(clock, by: .milliseconds(200), times: 3)
            #expect(driver.starts == 1)
            async let two = agent.submit(H.function(), H.request("2"))
            async let three = agent.submit(H.function(), H.request("3"))
            await eventually("three starts for three waiters") { driver.starts == 3 }
            await step(clock, by: .milliseconds(200), times: 3)
            #expect(driver.starts == 3)
            gate.fire()
            _ = try await (one, two, three)
            #expect(driver.starts == 3)
        }
    }

    @Test func anIdleContainerIsFrozenAfterTheFreezeDelayAndThawedByTheNextCall() async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = 50 }) { agent, driver, clock in
            _ = try await agent.submit(H.function(), H.request("warm"))
            let c = try #require(driver.containers.first)
            await eventually("the container's task set its freeze timer") { clock.scheduled >= 1 }
            clock.advance(by: .milliseconds(49))
            try await Task.sleep(for: .milliseconds(20))
            #expect(!c.isFrozen, "not before the delay")
            await advance(clock, by: .milliseconds(1), until: "it froze") { c.isFrozen }
            #expect(agent.existingQueue(for: H.function())?.stats.count(.paused) == 1)
            _ = try await agent.submit(H.function(), H.request("again"))
            #expect(c.thaws == 1 && c.calls == 2)
            await eventually("the queue counts it idle again") { agent.existingQueue(for: H.function())?.stats.count(.idle) == 1 }
            #expect(agent.existingQueue(for: H.function())?.stats.count(.paused) == 0)
        }
    }

    @Test func callsOnAWarmContainerSetNoTimerYetItsFreezeDelayCountsFromTheLastCallsEnd() async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = 100 }) { agent, driver, clock in
            let f = H.function(idleTimeout: 3600)
            _ = try await agent.submit(f, H.request("warm"))
            let c = try #require(driver.containers.first)
            await eventually("the container's task set its freeze timer") { clock.scheduled == 1 }
            clock.advance(by: .milliseconds(60))
            for i in 0..<20 { _ = try await agent.submit(f, H.request("\(i)")) }
            try await Task.sleep(for: .milliseconds(20))
            #expect(clock.scheduled == 1, "twenty calls set no timer: the container's task slept through them")
            clock.advance(by: .milliseconds(40))  // its timer: 100 ms after the first call, 40 after the last
            await eventually("its task set its timer again, from the last call's end") { clock.scheduled == 2 }
            #expect(!c.isFrozen)
            clock.advance(by: .milliseconds(59))
            try await Task.sleep(for: .milliseconds(20))
            #expect(!c.isFrozen, "not before 100 ms after the last call")
            await advance(clock, by: .milliseconds(1), until: "it froze 100 ms after the last call") { c.isFrozen }
            #expect(c.calls == 21 && driver.starts == 1)
        }
    }

    @Test func aContainerThawedForACallIsFrozenAgainTheDelayAfterThatCall() async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = 50 }) { agent, driver, clock in
            let f = H.function(idleTimeout: 3600)
            _ = try await agent.submit(f, H.request("warm"))
            let c = try #require(driver.containers.first)
            await advance(clock, by: .milliseconds(10), until: "it froze") { c.isFrozen }
            _ = try await agent.submit(f, H.request("thawed"))
            #expect(c.thaws == 1 && !c.isFrozen)
            clock.advance(by: .milliseconds(49))
            try await Task.sleep(for: .milliseconds(20))
            #expect(!c.isFrozen, "not before the delay")
            // Its task slept until the idle timeout (an hour) once the container was frozen: the
            // call's end must have woken it.
            await advance(clock, by: .milliseconds(1), until: "frozen again 50 ms after the call") { c.freezes == 2 }
        }
    }

    @Test func aFreezeDelayOfZeroFreezesAtOnceAndANegativeOneNever() async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = 0 }) { agent, driver, _ in
            _ = try await agent.submit(H.function(), H.request("warm"))
            await eventually("frozen at once") { driver.containers.first?.isFrozen == true }
        }
        try await H.withAgent(configure: { $0.freezeIdleMillis = -1 }) { agent, driver, clock in
            _ = try await agent.submit(H.function(idleTimeout: 3600), H.request("warm"))
            await step(clock, by: .seconds(60), times: 50)
            #expect(driver.containers.first?.freezes == 0)
        }
    }

    @Test func aFunctionsFreezeAnnotationOverridesTheNodesFreezeDelay() async throws {
        func annotated(_ id: String, _ value: String) -> FunctionDefinition {
            var f = H.function(id, idleTimeout: 3600)
            f.annotations = [FunctionDefinition.freezeIdleAnnotation: value]
            return f
        }
        try await H.withAgent(configure: { $0.freezeIdleMillis = -1 }) { agent, driver, clock in
            _ = try await agent.submit(annotated("now", "0"), H.request("warm"))
            _ = try await agent.submit(annotated("later", "\"500\""), H.request("warm"))
            let now = try #require(driver.containers.first { $0.task.function.fnID == "now" })
            let later = try #require(driver.containers.first { $0.task.function.fnID == "later" })
            await eventually("the annotation's 0 froze it at once, though the node never freezes") { now.isFrozen }
            #expect(!later.isFrozen)
            await advance(clock, by: .milliseconds(100), until: "frozen after its own 500 ms") { later.isFrozen }
        }
        try await H.withAgent(configure: { $0.freezeIdleMillis = 0 }) { agent, driver, clock in
            _ = try await agent.submit(annotated("never", "-1"), H.request("warm"))
            await step(clock, by: .seconds(60), times: 20)
            #expect(driver.containers.first?.freezes == 0, "its -1 wins over the node's 0")
        }
    }

    @Test func aCallArrivingWhileItsContainerFreezesWaitsForTheFreezeAndThawsItInsteadOfLaunchingAnother() async throws {
        let hold = Semaphore()
        try await H.withAgent(holdFreeze: hold, configure: { $0.freezeIdleMillis = 0 }) { agent, driver, _ in
            _ = try await agent.submit(H.function(), H.request("warm"))
            let c = try #require(driver.containers.first)
            await eventually("the freeze began") { c.isFreezing }
            // No lock is held while it freezes: the container listing answers, showing it paused.
            #expect(agent.containers.map(\.state) == ["paused"])
            let second = Task { try await agent.submit(H.function(), H.request("again")) }
            // Time for a wrong launch, or a call on a container still freezing, to happen.
            try await Task.sleep(for: .milliseconds(50))
            #expect(c.calls == 1, "no call runs on a container while it freezes")
            hold.post()
            let r = try await second.value
            #expect(H.text(r) == "\(c.name):again")
            #expect(driver.starts == 1)
            #expect(c.freezes >= 1 && c.thaws >= 1)
            hold.post()  // a freeze after the second call, if it began before shutdown
        }
    }

    @Test func aContainerStartedForAWaitingCallGoesToItUnfrozenEvenWithNoFreezeDelay() async throws {
        // Every freeze holds until the test lets it go: a freeze before the first call would keep
        // that call waiting, as in Fn a call takes a new container straight from its launch.
        let hold = Semaphore()
        try await H.withAgent(holdFreeze: hold, configure: { $0.freezeIdleMillis = 0 }) { agent, driver, _ in
            let first = Task { try await agent.submit(H.function(), H.request("first")) }
            await eventually("the first call ran") { driver.containers.first?.calls == 1 }
            if driver.containers.first?.calls != 1 { hold.post() }  // a wrong freeze held it: let it go, so the test ends
            _ = try await first.value
            let c = try #require(driver.containers.first)
            #expect(c.thaws == 0, "the container was never frozen before its first call")
            await eventually("it froze once idle") { c.isFreezing }
            hold.post()
        }
    }

    @Test func aCallThatWaitedForAFreezeThatFailedGetsAnotherContainer() async throws {
        let hold = Semaphore()
        try await H.withAgent(failFreeze: true, holdFreeze: hold, configure: { $0.freezeIdleMillis = 0 }) { agent, driver, _ in
            _ = try await agent.submit(H.function(), H.request("warm"))
            let first = try #require(driver.containers.first)
            await eventually("the freeze began") { first.isFreezing }
            let second = Task { try await agent.submit(H.function(), H.request("again")) }
            // Time for the call to take the freezing container and wait for its freeze.
            try await Task.sleep(for: .milliseconds(50))
            hold.post()  // the freeze fails: the container may be half frozen
            let r = try await second.value
            #expect(!H.text(r).hasPrefix(first.name + ":"), "the call ran on another container: \(H.text(r))")
            #expect(driver.starts == 2 && first.calls == 1)
            await eventually("the container whose freeze failed ended") { first.isClosed }
            for _ in 0..<4 { hold.post() }  // the new container's own freezes, if they began
        }
    }

    @Test func aFailedFreezeEndsTheContainerAndTheNextCallGetsANewOne() async throws {
        try await H.withAgent(failFreeze: true, configure: { $0.freezeIdleMillis = 10 }) { agent, driver, clock in
            _ = try await agent.submit(H.function(), H.request("warm"))
            await advance(clock, by: .milliseconds(10), until: "the container ended") { driver.live.isEmpty }
            _ = try await agent.submit(H.function(), H.request("again"))
            #expect(driver.starts == 2)
        }
    }

    @Test func aContainerThatCannotBeThawedIsEndedAndTheCallIsServedByANewOne() async throws {
        try await H.withAgent(failFirstThaw: true, configure: { $0.freezeIdleMillis = 10 }) { agent, driver, clock in
            _ = try await agent.submit(H.function(), H.request("warm"))
            await advance(clock, by: .milliseconds(10), until: "the container froze") { driver.containers.first?.isFrozen == true }
            // Not 504 "Timed out" as if the function were slow: the runner's fault, hidden from the call.
            let r = try await agent.submit(H.function(), H.request("again"))
            #expect(H.text(r) == "\(driver.containers[1].name):again")
            #expect(driver.starts == 2)
            // The slot's own task ends it, beside the call that moved on to a new container.
            await eventually("the container that could not be thawed ended") { driver.containers[0].isClosed }
            #expect(driver.containers[0].calls == 1)
        }
    }

    /// As Fn's agent ends a slot whose container exited: the container's end alone drops it,
    /// frozen or not, before any call fails on it or any timer fires.
    @Test(arguments: [false, true])
    func anIdleContainerWhoseProcessEndedIsDroppedAndTheNextCallGetsANewOne(frozen: Bool) async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = frozen ? 10 : -1 }) { agent, driver, clock in
            _ = try await agent.submit(H.function(), H.request("warm"))
            let first = try #require(driver.containers.first)
            if frozen { await advance(clock, by: .milliseconds(10), until: "the container froze") { first.isFrozen } }
            first.kill()
            await eventually("the dead container was dropped") { first.isClosed && agent.containers.isEmpty }
            await eventually("its token was released") { agent.tracker.utilization.memoryUsedBytes == 0 }
            let r = try await agent.submit(H.function(), H.request("again"))
            #expect(H.text(r) == "\(driver.containers[1].name):again")
            #expect(driver.starts == 2 && first.calls == 1)
        }
    }

    @Test func aContainerWhoseProcessEndedDuringAGoodCallAnswersItAndIsNotOfferedAgain() async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = -1 }) { agent, driver, _ in
            let r = try await agent.submit(H.function(), H.request("answer-then-exit"))
            #expect(r.status == 200 && H.text(r).hasSuffix(":bye"))
            let first = try #require(driver.containers.first)
            await eventually("the container was ended") { first.isClosed }
            let next = try await agent.submit(H.function(), H.request("again"))
            #expect(H.text(next) == "\(driver.containers[1].name):again")
            #expect(driver.starts == 2 && first.calls == 1)
        }
    }

    @Test func theIdleTimeoutRestartsWithEveryIdlePeriodThenEndsTheContainer() async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = -1 }) { agent, driver, clock in
            let f = H.function(idleTimeout: 10)
            _ = try await agent.submit(f, H.request("1"))
            await step(clock, by: .seconds(1), times: 9)
            _ = try await agent.submit(f, H.request("2"))
            await step(clock, by: .seconds(1), times: 9)
            #expect(driver.live.count == 1, "18 s after the first call but 9 s after the last: still alive")
            await advance(clock, by: .seconds(1), until: "the idle timeout ended it", maxSteps: 30) { driver.live.isEmpty }
            await eventually("its token was released") { agent.tracker.utilization.memoryUsedBytes == 0 }
            #expect(driver.starts == 1)
        }
    }

    @Test func aConfigChangeNeverReusesAContainerOfTheOldConfig() async throws {
        try await H.withAgent { agent, driver, _ in
            _ = try await agent.submit(H.function(config: ["A": "1"]), H.request("x"))
            _ = try await agent.submit(H.function(config: ["A": "2"]), H.request("x"))
            #expect(driver.starts == 2)
            #expect(Set(driver.containers.map { $0.task.function.fnConfig["A"] ?? "" }) == ["1", "2"])
        }
    }

    @Test func twentyParallelCallsNeverShareAContainerAtOnceAndAllSucceed() async throws {
        try await H.withAgent { agent, driver, clock in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 { group.addTask { try await agent.submit(H.function(), H.request("sleep:50")).status } }
                await advance(clock, by: .milliseconds(10), until: "all calls ended") {
                    driver.containers.reduce(0) { $0 + $1.calls } == 20 && H.running(agent, H.function()) == 0
                }
                var ok = 0
                for try await status in group where status == 200 { ok += 1 }
                #expect(ok == 20)
            }
            #expect(driver.starts >= 2 && driver.starts <= 20)
        }
    }

    @Test func anIdleQueueIsDroppedAfterTheLauncherTimeoutButNotBefore() async throws {
        try await H.withAgent(configure: {
            $0.hotLauncherTimeoutMillis = 60_000
            $0.freezeIdleMillis = -1
        }) { agent, driver, clock in
            _ = try await agent.submit(H.function(idleTimeout: 5), H.request("x"))
            #expect(agent.queueCount == 1)
            await advance(clock, by: .seconds(1), until: "the container ended", maxSteps: 10) { driver.live.isEmpty }
            await step(clock, by: .seconds(5), times: 8)
            #expect(agent.queueCount == 1, "kept while younger than the launcher timeout")
            await advance(clock, by: .seconds(5), until: "the queue was dropped", maxSteps: 30) { agent.queueCount == 0 }
            _ = try await agent.submit(H.function(idleTimeout: 5), H.request("y"))
            #expect(agent.queueCount == 1)
        }
    }
}
