@testable import Runner
import RunnerOS
import Testing

/// An agent on the fake driver and a manual clock, for the agent's rules.
enum FakeAgentHarness {
    static func function(
        _ fnID: String = "f1", memoryMB: UInt64 = 128, cpu: UInt64 = 0, timeout: Int = 30, idleTimeout: Int = 30,
        format: String = "http-stream", config: [String: String] = [:]
    ) -> FunctionDefinition {
        FunctionDefinition(
            appID: "app1", appName: "myapp", fnID: fnID, fnName: "name-\(fnID)", image: "fake/\(fnID):1", format: format,
            memoryMB: memoryMB, cpuMillicores: cpu, timeoutSeconds: timeout, idleTimeoutSeconds: idleTimeout, fnConfig: config)
    }

    static func request(_ body: String) -> FunctionRequest {
        FunctionRequest(method: "POST", url: "http://localhost:8080/invoke/f1", contentType: "text/plain", body: Array(body.utf8))
    }

    static func text(_ r: FunctionResponse) -> String { String(decoding: r.body, as: UTF8.self) }

    /// Runs `body` with an agent serving on the fake driver; shuts it down afterwards and checks
    /// that every container was closed and every token released.
    static func withAgent(
        totalMemoryMB: UInt64 = 1024, totalCPU: UInt64 = 4000, failFreeze: Bool = false, failFirstThaw: Bool = false,
        holdFreeze: Semaphore? = nil, onStart: @escaping @Sendable (ContainerTask, Int) async throws(RunnerError) -> Void = { _, _ throws(RunnerError) in },
        configure: (inout AgentConfiguration) -> Void = { _ in },
        _ body: (Agent, FakeDriver, ManualClock) async throws -> Void
    ) async throws {
        let clock = ManualClock()
        let driver = FakeDriver(clock: clock, failFreeze: failFreeze, failFirstThaw: failFirstThaw, holdFreeze: holdFreeze, onStart: onStart)
        var config = AgentConfiguration()
        config.shutdownGraceMillis = 0
        configure(&config)
        let agent = Agent(
            configuration: config, driver: driver,
            tracker: ResourceTracker(totalMemoryBytes: totalMemoryMB << 20, totalCPUMillicores: totalCPU), clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await agent.run() }
            // A hang in the agent fails the test instead of holding the whole run: the watchdog
            // records what it sees, then shuts the agent down, which answers every call waiting for
            // a container.
            // Generous: in the first minute of a full run on a fresh clone under two CPU hogs
            // (every suite starting, the fixtures being built, images unpacked) fake-clock tests
            // took over 100 s; a hang still fails, and the run goes on.
            let watchdog = Task {
                try await Task.sleep(for: .seconds(300))
                Issue.record(
                    "still running after 300 s: \(agent.stateDescription)\ntracker: \(agent.tracker.utilization) waiters=\(agent.tracker.waiterCount)\ncontainers: \(driver.containers.map { "\($0.name) calls=\($0.calls) closed=\($0.isClosed)" })\nclock sleepers=\(clock.sleeperCount)")
                await agent.shutdown()
            }
            defer { watchdog.cancel() }
            do {
                try await body(agent, driver, clock)
            } catch {
                await agent.shutdown()
                throw error
            }
            await agent.shutdown()
            try await group.waitForAll()
        }
        #expect(driver.live.isEmpty, "shutdown closed every container")
        #expect(agent.tracker.utilization.memoryUsedBytes == 0 && agent.tracker.utilization.cpuUsedMillicores == 0, "every token was released")
        #expect(driver.containers.allSatisfy { $0.overlaps == 0 }, "no container ever ran two calls at once")
    }

    /// Calls waiting for a container of `f` now.
    static func waiting(_ agent: Agent, _ f: FunctionDefinition) -> Int {
        agent.existingQueue(for: f)?.stats.count(SlotQueueStats.RequestState.wait) ?? 0
    }

    /// Calls of `f` running now (nil before its queue exists).
    static func running(_ agent: Agent, _ f: FunctionDefinition) -> Int? {
        agent.existingQueue(for: f)?.stats.count(SlotQueueStats.RequestState.exec)
    }

    /// The error `submit` threw, or nil (and an issue) if it succeeded.
    static func failure(_ agent: Agent, _ f: FunctionDefinition, _ body: String, sourceLocation: SourceLocation = #_sourceLocation) async -> RunnerError? {
        do {
            _ = try await agent.submit(f, request(body))
            Issue.record("\(body) must fail", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }
}
