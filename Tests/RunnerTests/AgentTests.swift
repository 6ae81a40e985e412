import OCIImage
import Runner
import RunnerOS
import Sandbox
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The agent's key scenarios on the real runtime, with hello-stream as the function.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct AgentTests {
    func function(idleTimeout: Int = 30, timeout: Int = 5, config: [String: String] = [:]) -> FunctionDefinition {
        FunctionDefinition(
            appID: "app1", appName: "myapp", fnID: "fn1", fnName: "myfn", image: "fn-test/hello-stream:1", memoryMB: 64,
            timeoutSeconds: timeout, idleTimeoutSeconds: idleTimeout, fnConfig: config)
    }

    func request(_ body: String) -> FunctionRequest { RunnerHarness.request(body) }
    func bodyText(_ r: FunctionResponse) -> String { RunnerHarness.text(r) }

    /// An agent serving hello-stream for the length of `body`. `maxWaitMillis` (FN_MAX_WAIT_MSECS)
    /// frees a call's wait for a container from its timeout: for tests of short timeouts that
    /// must reach a container on a loaded machine.
    func withAgent(
        freezeIdleMillis: Int = 50, maxResponseBytes: Int = 0, totalMemoryMB: UInt64 = 2048, maxWaitMillis: Int? = nil,
        _ body: (Agent, Sandbox) async throws -> Void
    ) async throws {
        try await RunnerHarness.withAgent(
            "agent", images: [(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:1")], totalMemoryMB: totalMemoryMB,
            configure: {
                $0.freezeIdleMillis = freezeIdleMillis
                $0.maxResponseBytes = maxResponseBytes
                $0.maxWaitMillis = maxWaitMillis
            }, body)
    }

    @Test func aHundredFrozenContainersAreHeldAtOnceAndEachThawsForItsNextCall() async throws {
        try await withAgent(freezeIdleMillis: 0, totalMemoryMB: 100 * 16 + 64) { agent, sandbox in
            func fn(_ i: Int) -> FunctionDefinition {
                FunctionDefinition(
                    appID: "app1", appName: "myapp", fnID: "d\(i)", fnName: "d\(i)", image: "fn-test/hello-stream:1", memoryMB: 16,
                    idleTimeoutSeconds: 3600)
            }
            for i in 0..<100 { #expect(bodyText(try await agent.submit(fn(i), request("n\(i)"))) == "Hello n\(i)") }
            for _ in 0..<1000 where sandbox.liveContainers.contains(where: { (try? $0.freezerState()) != .frozen }) {
                try await Task.sleep(for: .milliseconds(10))
            }
            let containers = sandbox.liveContainers
            #expect(containers.count == 100)
            #expect(try containers.allSatisfy { try $0.freezerState() == .frozen }, "every one sits frozen in its cgroup")
            #expect(agent.containers.filter { $0.frozenForMillis != nil }.count == 100)
            for i in stride(from: 99, through: 0, by: -7) {
                #expect(bodyText(try await agent.submit(fn(i), request("again \(i)"))) == "Hello again \(i)")
            }
            #expect(sandbox.liveContainers.count == 100, "thawed and reused, none started anew")
        }
    }

    @Test func withReclaimOnAFrozenContainerStillServesItsNextCallAndIsCounted() async throws {
        try await RunnerHarness.withAgent(
            "agent", images: [(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:1")], totalMemoryMB: 512,
            configure: {
                $0.freezeIdleMillis = 0
                $0.freezeReclaim = true
            }
        ) { agent, sandbox in
            _ = try await agent.submit(function(), request("warm"))
            for _ in 0..<500 where (try? sandbox.liveContainers.first?.freezerState()) != .frozen { try await Task.sleep(for: .milliseconds(10)) }
            #expect(try sandbox.liveContainers.first?.freezerState() == .frozen)
            #expect(bodyText(try await agent.submit(function(), request("after reclaim"))) == "Hello after reclaim")
            let reclaims = PrometheusText.count(of: "fn_freeze_reclaims_total", in: agent.prometheusText())
            if sandbox.driver.canReclaimMemory {
                #expect(reclaims ?? 0 >= 1, "the freeze was followed by a reclaim")
            } else {
                #expect(reclaims == 0, "this host (\(sandbox.driver.layout.kind)) has no memory.reclaim: nothing is attempted")
            }
        }
    }

    @Test func theSecondCallReusesTheHotContainer() async throws {
        try await withAgent { agent, sandbox in
            let first = try await agent.submit(function(), request("one"))
            #expect(bodyText(first) == "Hello one")
            let pid = sandbox.liveContainers.first?.pid
            let second = try await agent.submit(function(), request("two"))
            #expect(bodyText(second) == "Hello two")
            #expect(sandbox.liveContainers.count == 1)
            #expect(sandbox.liveContainers.first?.pid == pid)
        }
    }

    @Test func anIdleContainerIsFrozenAndThawedForTheNextCall() async throws {
        try await withAgent(freezeIdleMillis: 20) { agent, sandbox in
            _ = try await agent.submit(function(), request("warm"))
            // Polled: on a loaded machine the freeze may come well after its 20 ms.
            try await waitUntil { try sandbox.liveContainers.first?.freezerState() == .frozen }
            let r1 = try await agent.submit(function(), request("thawed"))
            #expect(bodyText(r1) == "Hello thawed")
        }
    }

    @Test func aContainerEndsAfterItsIdleTimeout() async throws {
        try await withAgent { agent, sandbox in
            _ = try await agent.submit(function(idleTimeout: 1), request("once"))
            let idleSince = ContinuousClock.now
            #expect(sandbox.liveContainers.count == 1)
            try await Task.sleep(for: .milliseconds(500))
            let kept = sandbox.liveContainers.count == 1
            // A loaded machine can oversleep by the rest of the second; only a shorter idle says something.
            if ContinuousClock.now - idleSince < .milliseconds(900) {
                #expect(kept, "idle for half its idle timeout, it is kept")
            }
            // Then ended (polled: a loaded machine may take a while past the second).
            try await waitUntil { sandbox.liveContainers.isEmpty && agent.tracker.utilization.memoryUsedBytes == 0 }
        }
    }

    @Test func anIdleContainerKilledFromOutsideIsDroppedAndTheNextCallGetsANewOne() async throws {
        try await withAgent(freezeIdleMillis: -1) { agent, sandbox in
            _ = try await agent.submit(function(), request("warm"))
            let first = try #require(sandbox.liveContainers.first)
            #expect(kill(first.pid, SIGKILL) == 0)
            // Its exit alone ends it: no call fails on it first.
            try await waitUntil {
                agent.containers.isEmpty && sandbox.liveContainers.isEmpty && agent.tracker.utilization.memoryUsedBytes == 0
            }
            let r = try await agent.submit(function(), request("again"))
            #expect(bodyText(r) == "Hello again")
            #expect(sandbox.liveContainers.map(\.pid) != [first.pid])
        }
    }

    @Test func aTimedOutCallEndsItsContainerAndTheNextCallSucceeds() async throws {
        // Both calls start a container, which under load can take longer than their 1 s.
        try await withAgent(maxWaitMillis: 60_000) { agent, sandbox in
            do {
                _ = try await agent.submit(function(timeout: 1), request("!sleep 3000"))
                Issue.record("the call must time out")
            } catch let error as RunnerError {
                #expect(error.code == .callTimeout)
                #expect(error.message == "Timed out")
            }
            let r2 = try await agent.submit(function(timeout: 1), request("next"))
            #expect(bodyText(r2) == "Hello next")
        }
    }

    @Test func aConfigChangeGetsItsOwnContainer() async throws {
        try await withAgent { agent, sandbox in
            let r3 = try await agent.submit(function(config: ["GREETING": "a"]), request("!env GREETING"))
            #expect(bodyText(r3) == "a")
            let r4 = try await agent.submit(function(config: ["GREETING": "b"]), request("!env GREETING"))
            #expect(bodyText(r4) == "b")
            #expect(sandbox.liveContainers.count == 2)
        }
    }

    @Test func twentyParallelCallsNeverShareAContainerAtOnceAndAllSucceed() async throws {
        try await withAgent { agent, sandbox in
            try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<20 {
                    group.addTask {
                        let r = try await agent.submit(function(), request("!sleep 100"))
                        return bodyText(r) + " \(i)"
                    }
                }
                var answers = 0
                for try await a in group {
                    #expect(a.hasPrefix("slept 100"))
                    answers += 1
                }
                #expect(answers == 20)
            }
            // Each container serves one call at a time: 100 ms calls in parallel need several.
            #expect(sandbox.liveContainers.count > 1 && sandbox.liveContainers.count <= 20)
        }
    }

    /// Submits and returns the RunnerError it must throw.
    func failure(_ agent: Agent, _ f: FunctionDefinition, _ body: String) async -> RunnerError? {
        let error = await RunnerHarness.failure(agent, f, request(body))
        if error == nil { Issue.record("\(body) must fail") }
        return error
    }

    @Test func functionErrorsMapToFnsErrorsAndEndTheContainerOnlyWhenItIsBroken() async throws {
        try await withAgent(maxResponseBytes: 1000) { agent, sandbox in
            _ = try await agent.submit(function(), request("warm"))
            let pid = sandbox.liveContainers.first?.pid

            let failed = await failure(agent, function(), "!status 502")
            #expect(failed?.code == .functionFailed && failed?.message == "function failed")
            let saidTimeout = await failure(agent, function(), "!status 504")
            #expect(saidTimeout?.code == .callTimeout)
            #expect(sandbox.liveContainers.first?.pid == pid, "a 502 or 504 from the function keeps the container")

            let tooBig = await failure(agent, function(), "!big 5000")
            #expect(tooBig?.code == .responseTooBig && tooBig?.message == "function response body too large")

            let crashed = await failure(agent, function(), "!crash")
            #expect(crashed?.code == .functionResponse && crashed?.message == "error receiving function response")
            let r = try await agent.submit(function(), request("after"))
            #expect(bodyText(r) == "Hello after")
        }
    }

    @Test func aHotContainerKilledForItsMemoryLimitIsReportedOutOfMemory() async throws {
        try await withAgent { agent, _ in
            var small = function()
            small.memoryMB = 16
            let oom = await failure(agent, small, "!alloc 64")
            #expect(oom?.code == .outOfMemory, "\(String(describing: oom))")
            #expect(oom?.message.hasPrefix("container out of memory") == true)
        }
    }

    @Test func anIdleContainerOfAnotherFunctionIsEvictedToMakeRoom() async throws {
        try await withAgent(totalMemoryMB: 200) { agent, sandbox in
            var a = function()
            a.fnID = "fa"
            a.memoryMB = 128
            var b = function()
            b.fnID = "fb"
            b.memoryMB = 128
            _ = try await agent.submit(a, request("a"))
            let pidA = sandbox.liveContainers.first?.pid
            #expect(agent.tracker.utilization.memoryUsedBytes == 128 << 20)
            let r = try await agent.submit(b, request("b"))
            #expect(bodyText(r) == "Hello b")
            #expect(sandbox.liveContainers.count == 1)
            #expect(sandbox.liveContainers.first?.pid != pidA, "a's idle container made room for b's")
        }
    }

    @Test func aBusyContainerIsNotEvictedAndTheOtherCallWaitsThenTimesOut() async throws {
        try await withAgent(totalMemoryMB: 200) { agent, sandbox in
            var a = function(timeout: 3)
            a.fnID = "fa"
            a.memoryMB = 128
            var b = function(timeout: 1)
            b.fnID = "fb"
            b.memoryMB = 128
            let slowA = a
            let call = request("!sleep 2000")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await agent.submit(slowA, call) }
                try await waitUntil { agent.tracker.utilization.memoryUsedBytes == 128 << 20 }  // a holds its memory
                let busy = await failure(agent, b, "b")
                #expect(busy?.code == .serverBusy, "\(String(describing: busy))")
                try await group.waitForAll()
            }
        }
    }

    @Test func aRequestLargerThanTheNodeIsRefusedAtOnce() async throws {
        try await withAgent { agent, _ in
            var huge = function()
            huge.memoryMB = 64 << 10
            do {
                _ = try await agent.submit(huge, request("x"))
                Issue.record("the call must be refused")
            } catch let error as RunnerError {
                #expect(error.code == .resourceTooBig)
                #expect(error.message == "Requested CPU/Memory cannot be allocated")
            }
        }
    }
}
