import RunnerOS
import TestSupport
import Testing

@testable import Runner

/// Instances kept ahead of demand (`fnrunner.io/prewarm`), on the fake driver and a manual
/// clock: started before any call, frozen, served, replaced, retired, and first to be evicted.
struct AgentPrewarmTests {
    typealias H = FakeAgentHarness

    func prewarmed(_ count: Int, fnID: String = "f1", memoryMB: UInt64 = 128, idleTimeout: Int = 30, config: [String: String] = [:])
        -> FunctionDefinition
    {
        var f = H.function(fnID, memoryMB: memoryMB, idleTimeout: idleTimeout, config: config)
        f.annotations[FunctionDefinition.prewarmAnnotation] = "\(count)"
        return f
    }

    func idle(_ agent: Agent, _ f: FunctionDefinition) -> Int { agent.existingQueue(for: f)?.idleCount ?? 0 }

    /// [hits, misses] as /metrics counts them.
    func prewarm(_ agent: Agent) -> [Int?] {
        let text = agent.prometheusText()
        return [PrometheusText.count(of: "fn_prewarm_hits_total", in: text), PrometheusText.count(of: "fn_prewarm_misses_total", in: text)]
    }

    @Test func aPrewarmedFnHasItsInstancesStartedAndFrozenBeforeAnyCallAndAFirstCallIsAHit() async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = 50 }) { agent, driver, clock in
            let f = prewarmed(2)
            agent.prewarm(f)
            await eventually("two instances idle") { driver.starts == 2 && idle(agent, f) == 2 }
            await advance(clock, by: .milliseconds(10), until: "both frozen") { driver.containers.allSatisfy(\.isFrozen) }
            let r = try await agent.submit(f, H.request("first"))
            #expect(driver.containers.contains { $0.name == r.header("x-container") && $0.thaws == 1 }, "the call thawed a prewarmed one")
            #expect(prewarm(agent) == [1, 0], "one hit, no miss")
            await eventually("the instance is idle again") { idle(agent, f) == 2 }
            try await Task.sleep(for: .milliseconds(50))
            #expect(driver.starts == 2, "the used instance counts towards the target: nothing else started")
            // The key ignores the count: a changed count keeps the instances, a lower one lets the
            // extra ones end at their idle timeout.
            #expect(f.slotKey == prewarmed(1).slotKey)
        }
    }

    @Test func prewarmedInstancesOutliveTheIdleTimeoutAndOnlyTheExtraOnesEnd() async throws {
        try await H.withAgent { agent, driver, clock in
            let f = prewarmed(1, idleTimeout: 30)
            agent.prewarm(f)
            await eventually("one instance idle") { idle(agent, f) == 1 }
            // Two calls at once: one finds the instance (a hit), the other waits for one (a miss).
            async let a = agent.submit(f, H.request("sleep:100"))
            async let b = agent.submit(f, H.request("sleep:100"))
            await advance(clock, by: .milliseconds(10), until: "both calls ended") {
                driver.containers.reduce(0) { $0 + $1.calls } == 2 && H.running(agent, f) == 0
            }
            _ = try await (a, b)
            #expect(prewarm(agent) == [1, 1], "one hit, one miss")
            await eventually("the calls' containers are idle") { H.running(agent, f) == 0 && idle(agent, f) >= 2 }
            await advance(clock, by: .seconds(1), until: "all but one ended at the idle timeout") { idle(agent, f) == 1 && driver.live.count == 1 }
            await step(clock, by: .seconds(30), times: 4)
            #expect(driver.live.count == 1 && idle(agent, f) == 1, "the one kept ahead of demand stays past its idle timeout")
        }
    }

    @Test func aChangedFnRetiresItsOldInstancesAndADeletedOneEndsThem() async throws {
        try await H.withAgent { agent, driver, clock in
            let f = prewarmed(2)
            agent.prewarm(f)
            await eventually("two instances idle") { idle(agent, f) == 2 }
            let old = driver.containers
            let changed = prewarmed(2, config: ["K": "v"])
            agent.prewarm(changed)
            await eventually("the old ones ended and two new ones are idle") { old.allSatisfy(\.isClosed) && idle(agent, changed) == 2 }
            #expect(driver.starts == 4)
            // Withdrawing the target keeps the instances until their idle timeout.
            var withdrawn = changed
            withdrawn.annotations[FunctionDefinition.prewarmAnnotation] = "0"
            agent.prewarm(withdrawn)
            try await Task.sleep(for: .milliseconds(50))
            #expect(driver.live.count == 2)
            await advance(clock, by: .seconds(1), until: "they ended at their idle timeout") { driver.live.isEmpty }
            // A deleted fn's instances end at once.
            let g = prewarmed(1, fnID: "f2")
            agent.prewarm(g)
            await eventually("f2's instance idle") { idle(agent, g) == 1 }
            agent.stopPrewarming(fnID: "f2")
            await eventually("it ended") { driver.live.isEmpty }
            try await Task.sleep(for: .milliseconds(50))
            #expect(driver.starts == 5, "nothing replaced it")
        }
    }

    @Test func aPrewarmLaunchNeverWaitsNorEvictsAndUnusedInstancesAreEvictedFirst() async throws {
        try await H.withAgent(totalMemoryMB: 256) { agent, driver, _ in
            let used = H.function("used", memoryMB: 128)
            _ = try await agent.submit(used, H.request("warm"))  // the oldest idle container
            let f = prewarmed(2, fnID: "pre", memoryMB: 128)
            agent.prewarm(f)
            await eventually("one instance fits") { idle(agent, f) == 1 }
            try await Task.sleep(for: .milliseconds(50))
            #expect(driver.starts == 2 && idle(agent, used) == 1, "the second did not evict the used container, nor wait")
            // Another fn needs room: the never-used instance goes first, though it is newer.
            let other = H.function("other", memoryMB: 128)
            _ = try await agent.submit(other, H.request("x"))
            #expect(idle(agent, used) == 1 && idle(agent, f) == 0)
            #expect(PrometheusText.count(of: "fn_evictions_total", in: agent.prometheusText()) == 1)
        }
    }

    @Test func aPrewarmLaunchTakesNoRoomACallsLaunchWaitsFor() async throws {
        try await H.withAgent(totalMemoryMB: 256) { agent, driver, clock in
            let a = H.function("a", memoryMB: 128)
            async let busy = agent.submit(a, H.request("sleep:500"))
            await eventually("a's call runs") { driver.containers.first?.calls == 1 }
            // b needs the whole node: its launch waits in line for a's container to end.
            let b = H.function("b", memoryMB: 256)
            async let whole = agent.submit(b, H.request("b"))
            await eventually("b's launch waits in line") { agent.tracker.waiterCount == 1 }
            let f = prewarmed(1, fnID: "pre", memoryMB: 128)
            agent.prewarm(f)
            await eventually("the prewarm launch was decided") {
                agent.existingQueue(for: f).map { $0.stats.count(SlotQueueStats.ContainerState.wait) + $0.stats.count(.start) == 0 } ?? false
            }
            #expect(driver.starts == 1, "the free 128 MiB are part of what b waits for: no instance started")
            await advance(clock, by: .milliseconds(100), until: "b's call ended") { driver.containers.contains { $0.task.function.fnID == "b" && $0.calls == 1 } }
            let statuses = (try await busy.status, try await whole.status)
            #expect(statuses == (200, 200))
            #expect(driver.containers.first { $0.task.function.fnID == "a" }?.isClosed == true, "a's idle container was evicted for b")
        }
    }
}
