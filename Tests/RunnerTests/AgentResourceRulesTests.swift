@testable import Runner
import RunnerOS
import Synchronization
import Testing

/// Fn's resource rules on the fake driver: tokens, waiting, eviction, the non-blocking mode.
struct AgentResourceRulesTests {
    typealias H = FakeAgentHarness

    @Test func aRequestLargerThanTheNodeIsRefusedBeforeItWaits() async throws {
        try await H.withAgent(totalMemoryMB: 256, totalCPU: 1000) { agent, driver, _ in
            let memory = await H.failure(agent, H.function(memoryMB: 512), "x")
            #expect(memory?.code == .resourceTooBig && memory?.message == "Requested CPU/Memory cannot be allocated")
            let cpu = await H.failure(agent, H.function(cpu: 2000), "x")
            #expect(cpu?.code == .resourceTooBig)
            #expect(driver.starts == 0)
        }
    }

    @Test func anIdleContainerOfAnotherFunctionIsEvictedOldestFirstToMakeRoom() async throws {
        try await H.withAgent(totalMemoryMB: 300, configure: { $0.freezeIdleMillis = -1 }) { agent, driver, _ in
            _ = try await agent.submit(H.function("a", memoryMB: 128), H.request("a"))
            _ = try await agent.submit(H.function("b", memoryMB: 128), H.request("b"))
            _ = try await agent.submit(H.function("c", memoryMB: 128), H.request("c"))
            let byFn = { (id: String) in driver.containers.first { $0.task.function.fnID == id }! }
            #expect(byFn("a").isClosed, "a, the oldest idle container, made room for c")
            #expect(!byFn("b").isClosed)
            #expect(driver.live.count == 2)
        }
    }

    @Test func roomAnEvictionFreesGoesToTheCallThatEvictedNotToALaterRequest() async throws {
        try await H.withAgent(totalMemoryMB: 256) { agent, _, clock in
            let idle = try agent.tracker.tryAcquire(memoryBytes: 256 << 20, cpuMillicores: 0).get()
            // An idle container of another function whose end frees its room at once, and a
            // request (as a prewarm launch makes) that asks for room right after that.
            let later = Mutex<ResourceToken?>(nil)
            _ = agent.evictor.register(slotKey: "other", memoryBytes: 256 << 20, cpuMillicores: 0) {
                idle.release()
                if case .success(let t) = agent.tracker.tryAcquire(memoryBytes: 256 << 20, cpuMillicores: 0) { later.withLock { $0 = t } }
                return true
            }
            let f = H.function("f", memoryMB: 256)
            async let result = agent.resources(for: f, key: f.slotKey.value, deadline: clock.nanos(after: .seconds(1))) { true }
            await step(clock, by: .milliseconds(200), times: 6)  // past the wait limit: a call left waiting gets 503
            let acquired = await result
            guard case .granted(let token) = acquired else {
                Issue.record("the evicting call got no room: \(acquired)")
                later.withLock { $0?.release() }
                return
            }
            #expect(later.withLock { $0 == nil }, "the later request found no room")
            token.release()
        }
    }

    /// Two launches that decide what to evict before any evicted container is gone: the second
    /// counts the first's evictions as room on its way and evicts for the rest, so both get
    /// room. (When each compared its own need with the same free room, the second evicted too
    /// little and waited out its wait limit for a 503, with an idle container still there.)
    @Test func twoLaunchesEvictingAtOnceEndEnoughIdleContainersForBoth() async throws {
        try await H.withAgent(totalMemoryMB: 256) { agent, _, clock in
            // Three idle containers of another function, 64 MiB each (64 MiB stay free), whose
            // ends come only when the test lets them.
            let evicted = Mutex<[ResourceToken]>([])
            for _ in 0..<3 {
                let token = try agent.tracker.tryAcquire(memoryBytes: 64 << 20, cpuMillicores: 0).get()
                _ = agent.evictor.register(slotKey: "other", memoryBytes: 64 << 20, cpuMillicores: 0, resources: token) {
                    evicted.withLock { $0.append(token) }
                    return true
                }
            }
            let x = H.function("x", memoryMB: 128)
            let y = H.function("y", memoryMB: 128)
            let deadline = clock.nanos(after: .seconds(1))
            async let first = agent.resources(for: x, key: x.slotKey.value, deadline: deadline) { true }
            await eventually("x evicted one container") { evicted.withLock { $0.count } == 1 }
            async let second = agent.resources(for: y, key: y.slotKey.value, deadline: deadline) { true }
            await eventually("y evicted the other two") { evicted.withLock { $0.count } == 3 }
            for token in evicted.withLock({ $0 }) { token.release() }
            await step(clock, by: .milliseconds(200), times: 6)  // past the wait limit
            let results = [await first, await second]
            for (name, result) in zip(["x", "y"], results) {
                guard case .granted(let token) = result else {
                    Issue.record("\(name) got no room: \(result)")
                    continue
                }
                token.release()
            }
            #expect(agent.tracker.utilization.memoryUsedBytes == 0)
        }
    }

    @Test func aContainerIsNeverEvictedForItsOwnFunction() async throws {
        try await H.withAgent(totalMemoryMB: 200, configure: { $0.maxWaitMillis = 1000 }) { agent, driver, clock in
            async let busy = agent.submit(H.function("a", memoryMB: 128), H.request("sleep:5000"))
            await eventually("the first call runs") { driver.containers.first?.calls == 1 }
            async let second = H.failure(agent, H.function("a", memoryMB: 128), "x")
            await eventually("the second call waits") { H.waiting(agent, H.function("a", memoryMB: 128)) == 1 }
            await advance(clock, by: .milliseconds(100), until: "the second call gave up") { H.waiting(agent, H.function("a", memoryMB: 128)) == 0 }
            #expect(await second?.code == .serverBusy)
            await advance(clock, by: .milliseconds(500), until: "the first call ended") { driver.containers.first?.calls == 1 && H.running(agent, H.function("a", memoryMB: 128)) == 0 }
            let busyStatus = try await busy.status
            #expect(busyStatus == 200)
            #expect(driver.starts == 1)
        }
    }

    @Test func aBusyContainerIsNotEvictedAndTheOtherFunctionGets503AfterItsWait() async throws {
        try await H.withAgent(totalMemoryMB: 200, configure: { $0.maxWaitMillis = 1000 }) { agent, driver, clock in
            async let busy = agent.submit(H.function("a", memoryMB: 128), H.request("sleep:3000"))
            await eventually("a's call runs") { driver.containers.first?.calls == 1 }
            async let other = H.failure(agent, H.function("b", memoryMB: 128), "x")
            await eventually("b waits") { H.waiting(agent, H.function("b", memoryMB: 128)) == 1 }
            await advance(clock, by: .milliseconds(100), until: "b gave up") { H.waiting(agent, H.function("b", memoryMB: 128)) == 0 }
            let error = await other
            #expect(error?.code == .serverBusy && error?.message == "Timed out - server too busy")
            #expect(driver.containers.first?.isClosed == false)
            await advance(clock, by: .milliseconds(500), until: "a's call ended") { H.running(agent, H.function("a", memoryMB: 128)) == 0 }
            let busyStatus = try await busy.status
            #expect(busyStatus == 200)
        }
    }

    @Test func aContainerStuckStartingIsNotEvicted() async throws {
        let gate = AsyncEvent()
        try await H.withAgent(
            totalMemoryMB: 200, onStart: { task, _ throws(RunnerError) in if task.function.fnID == "a" { _ = await gate.wait() } },
            configure: { $0.maxWaitMillis = 1000 }
        ) { agent, driver, clock in
            async let stuck = H.failure(agent, H.function("a", memoryMB: 128), "x")
            await eventually("a's container is starting") { driver.starts == 1 }
            async let other = H.failure(agent, H.function("b", memoryMB: 128), "x")
            await eventually("b waits") { H.waiting(agent, H.function("b", memoryMB: 128)) == 1 }
            await advance(clock, by: .milliseconds(100), until: "both gave up") {
                H.waiting(agent, H.function("b", memoryMB: 128)) == 0
                    && H.waiting(agent, H.function("a", memoryMB: 128)) == 0
            }
            #expect(await other?.code == .serverBusy)
            #expect(await stuck?.code == .serverBusy)
            gate.fire()
        }
    }

    @Test func theNonBlockingModeAnswers503AtOnceWhenNothingFitsOrCanBeEvicted() async throws {
        // Fn's test: 280 MB, twenty 50 MB calls sleeping 10 s: five run, fifteen get 503 at once.
        try await H.withAgent(totalMemoryMB: 280, configure: { $0.nonBlockingResources = true }) { agent, driver, clock in
            let f = H.function(memoryMB: 50)
            try await withThrowingTaskGroup(of: Result<Int, RunnerError>.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        do throws(RunnerError) { return .success(try await agent.submit(f, H.request("sleep:10000")).status) } catch { return .failure(error) }
                    }
                }
                var busy = 0
                var ok = 0
                for try await r in group {
                    switch r {
                    case .failure(let e):
                        #expect(e.code == .serverBusy)
                        busy += 1
                        if busy == 15 {
                            await advance(clock, by: .seconds(1), until: "the five calls ended") { H.running(agent, f) == 0 }
                        }
                    case .success(let status):
                        #expect(status == 200)
                        ok += 1
                    }
                }
                #expect(ok == 5 && busy == 15)
            }
            #expect(driver.starts == 5)
        }
    }

    @Test func theBlockingModeWaitsForATokenInsteadOfFailing() async throws {
        try await H.withAgent(totalMemoryMB: 100, configure: { $0.maxWaitMillis = 5000 }) { agent, driver, clock in
            let f = H.function(memoryMB: 64, idleTimeout: 1)
            async let first = agent.submit(f, H.request("sleep:1000"))
            await eventually("the first call runs") { driver.containers.first?.calls == 1 }
            var g = f
            g.fnID = "other"
            async let second = agent.submit(g, H.request("x"))
            await advance(clock, by: .milliseconds(100), until: "the second call ran") { driver.starts == 2 && driver.containers.last?.calls == 1 }
            let firstStatus = try await first.status
            #expect(firstStatus == 200)
            let secondStatus = try await second.status
            #expect(secondStatus == 200)
        }
    }
}
