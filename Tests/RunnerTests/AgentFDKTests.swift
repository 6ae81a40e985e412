import OCIImage
import Runner
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real Python FDK (`fdk` from PyPI) behind the agent.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct AgentFDKTests {
    func function(_ tag: String, timeout: Int = 10) -> FunctionDefinition {
        FunctionDefinition(
            appID: "app1", appName: "myapp", fnID: "fn-\(tag)", fnName: tag, image: "fn-test/pyfdk:\(tag)", memoryMB: 128,
            timeoutSeconds: timeout)
    }

    func request(_ body: String, headers: [(String, String)] = []) -> FunctionRequest {
        FunctionRequest(callID: "01FDK", deadline: "2030-01-01T00:00:00Z", contentType: "text/plain", headers: headers, body: Array(body.utf8))
    }

    func withAgent(_ body: (Agent, Sandbox) async throws -> Void) async throws {
        let layout = try FDKImage.layout()
        try await withSandbox("agentfdk") { sandbox, env in
            let store = try ImageStore(dataDirectory: env.stateDirectory + "-images")
            defer { try? FileSystem.removeTree(env.stateDirectory + "-images") }
            for tag in ["pyfdk", "pyfdk-teapot", "pyfdk-boom", "pyfdk-timeout", "pyfdk-slow"] {
                try store.importLayout(layout, as: "fn-test/pyfdk:\(tag)")
            }
            var config = AgentConfiguration(iofsRoot: env.stateDirectory + "/iofs")
            config.freezeIdleMillis = 0
            let agent = Agent(
                configuration: config, sandbox: sandbox, store: store,
                tracker: ResourceTracker(totalMemoryBytes: 2 << 30, totalCPUMillicores: 2000))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await agent.run() }
                do {
                    try await body(agent, sandbox)
                } catch {
                    agent.shutdown()
                    throw error
                }
                agent.shutdown()
                try await group.waitForAll()
            }
            #expect(sandbox.liveContainers.isEmpty)
        }
    }

    func text(_ r: FunctionResponse) -> String { String(decoding: r.body, as: UTF8.self) }

    func failure(_ agent: Agent, _ f: FunctionDefinition, _ body: String) async -> RunnerError? {
        do {
            _ = try await agent.submit(f, request(body))
            return nil
        } catch let e as RunnerError {
            return e
        } catch {
            return nil
        }
    }

    @Test func fiftyCallsOnOneHotFDKContainerFrozenBetweenCalls() async throws {
        try await withAgent { agent, sandbox in
            var pids = Set<Int32>()
            for i in 0..<50 {
                let r = try await agent.submit(function("pyfdk"), request("caller \(i)"))
                #expect(text(r) == "Hello caller \(i)")
                pids.formUnion(sandbox.liveContainers.map(\.pid))
            }
            #expect(pids.count == 1, "one hot container served all fifty calls")
        }
    }

    @Test func gatewayStatusesErrorsAndTimeoutsComeBackAsFnReportsThem() async throws {
        try await withAgent { agent, _ in
            let teapot = try await agent.submit(function("pyfdk-teapot"), request("", headers: [("Fn-Intent", "httprequest")]))
            #expect(teapot.status == 200)
            #expect(teapot.header("fn-http-status") == "418")
            #expect(text(teapot) == "short and stout")

            let boom = await failure(agent, function("pyfdk-boom"), "")
            #expect(boom?.code == .functionFailed)
            let saidTimeout = await failure(agent, function("pyfdk-timeout"), "")
            #expect(saidTimeout?.code == .callTimeout)
            // The FDK never enforces deadlines: the runner cuts a slow handler off at the timeout.
            let slow = await failure(agent, function("pyfdk-slow", timeout: 1), "5")
            #expect(slow?.code == .callTimeout)
            #expect(text(try await agent.submit(function("pyfdk-slow", timeout: 3), request("0.1"))) == "slept 0.1")
        }
    }
}
