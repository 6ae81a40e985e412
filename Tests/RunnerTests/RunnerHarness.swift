import NativeRuntime
import OCIImage
import Runner
import RunnerOS
import Sandbox
import TestSupport
import Testing

/// Shared set-up of the Runner tests: a sandbox with an image store holding some images, and an
/// agent serving from it for the length of a test.
enum RunnerHarness {
    static func request(_ body: String, headers: [(String, String)] = []) -> FunctionRequest {
        FunctionRequest(callID: "01CALL", deadline: "2030-01-01T00:00:00Z", contentType: "text/plain", headers: headers, body: Array(body.utf8))
    }

    static func text(_ r: FunctionResponse) -> String { String(decoding: r.body, as: UTF8.self) }

    /// A sandbox and an image store into which every (layout, name) was imported and unpacked
    /// (as a pull does), so a first call never waits for a large unpack.
    static func withImageStore(
        _ label: String, images: [(layout: String, name: String)],
        _ body: (Sandbox, ImageStore, TestEnvironment) async throws -> Void
    ) async throws {
        try await withSandbox(label) { sandbox, env in
            let store = try ImageStore(dataDirectory: env.stateDirectory + "-images")
            defer { try? FileSystem.removeTree(env.stateDirectory + "-images") }
            // On a thread of its own: an import and unpack takes seconds, and holding one of the
            // two threads of the cooperative pool (or the runner's capped pool) that long starves
            // every other test running meanwhile.
            try await TestThread.run {
                for image in images { _ = try store.rootfsLayers(try store.importLayout(image.layout, as: image.name)) }
            }
            try await body(sandbox, store, env)
        }
    }

    /// The native driver over the test's sandbox and store, iofs dirs in its state directory.
    static func driver(_ sandbox: Sandbox, _ store: ImageStore, _ env: TestEnvironment) -> NativeDriver {
        try! NativeDriver(configuration: .init(), sandbox: sandbox, store: store)
    }

    /// A container task for `function`.
    static func task(_ function: FunctionDefinition, name: String, startTimeout: Duration = .seconds(30)) -> ContainerTask {
        ContainerTask(function: function, name: name, spawnCallID: "01SPAWN", startTimeout: startTimeout, timeout: .seconds(30))
    }

    /// Runs `body` with an agent serving in the background; then shuts it down, waits for it, and
    /// checks that it ended every container and released every token.
    static func withAgent(
        _ label: String, images: [(layout: String, name: String)], totalMemoryMB: UInt64 = 2048,
        configure: (inout AgentConfiguration) -> Void = { _ in }, _ body: (Agent, Sandbox) async throws -> Void
    ) async throws {
        try await withImageStore(label, images: images) { sandbox, store, env in
            var config = AgentConfiguration()
            configure(&config)
            let agent = Agent(
                configuration: config, driver: driver(sandbox, store, env),
                tracker: ResourceTracker(totalMemoryBytes: totalMemoryMB << 20, totalCPUMillicores: 2000))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await agent.run() }
                do {
                    try await body(agent, sandbox)
                } catch {
                    await agent.shutdown()
                    throw error
                }
                await agent.shutdown()
                try await group.waitForAll()
            }
            #expect(sandbox.liveContainers.isEmpty, "shutdown ended every container: \(sandbox.liveContainers.map { "\($0.name) pid \($0.pid) \($0.exit.map { "\($0)" } ?? "running")" })")
            #expect(agent.tracker.utilization.memoryUsedBytes == 0, "every token was released")
        }
    }

    /// Submits and returns the RunnerError it threw (nil if it succeeded).
    static func failure(_ agent: Agent, _ f: FunctionDefinition, _ r: FunctionRequest) async -> RunnerError? {
        do {
            _ = try await agent.submit(f, r)
            return nil
        } catch let e as RunnerError {
            return e
        } catch {
            return nil
        }
    }
}
