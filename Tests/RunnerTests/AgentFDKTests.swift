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

    func request(_ body: String, headers: [(String, String)] = []) -> FunctionRequest { RunnerHarness.request(body, headers: headers) }
    func text(_ r: FunctionResponse) -> String { RunnerHarness.text(r) }
    func failure(_ agent: Agent, _ f: FunctionDefinition, _ body: String) async -> RunnerError? {
        await RunnerHarness.failure(agent, f, request(body))
    }

    /// An agent serving the FDK image's handlers, frozen as soon as they are idle. A call's
    /// wait for a container is limited by its timeout unless FN_MAX_WAIT_MSECS is set: set
    /// here, so that a Python start that takes over a second on a busy machine still reaches
    /// the 1 s calls whose timeouts these tests are about, instead of making them busy (503).
    func withAgent(_ body: (Agent, Sandbox) async throws -> Void) async throws {
        let layout = try await FDKImage.layout()
        let tags = ["pyfdk", "pyfdk-teapot", "pyfdk-boom", "pyfdk-timeout", "pyfdk-slow"]
        try await RunnerHarness.withAgent(
            "agentfdk", images: tags.map { (layout, "fn-test/pyfdk:\($0)") },
            configure: {
                $0.freezeIdleMillis = 0
                $0.maxWaitMillis = 60_000
            }, body)
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
