import OCIImage
import Runner
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Hot containers on the real runtime: launched from the image store, called, frozen, thawed.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"))
struct HotContainerTests {
    func function(_ image: String) -> FunctionDefinition {
        FunctionDefinition(appID: "app1", appName: "myapp", fnID: "fn1", fnName: "myfn", image: image, fnConfig: ["GREETING": "hi"])
    }

    func request(_ body: String) -> FunctionRequest { RunnerHarness.request(body) }

    /// Launches `image` (imported from `layout`) as a hot container named `name`.
    func withHotContainer(
        _ layout: String, _ image: String, name: String, _ body: (HotContainer, Sandbox) async throws -> Void
    ) async throws {
        try await RunnerHarness.withImageStore("hot", images: [(layout, image)]) { sandbox, store, env in
            let hot = try await HotContainer.launch(
                function(image), image: try store.image(image), store: store, sandbox: sandbox, iofsRoot: env.stateDirectory + "/iofs",
                name: name)
            try await body(hot, sandbox)
        }
    }

    @Test func aHotContainerServesManyCallsFrozenBetweenThem() async throws {
        try await withHotContainer(try ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:1", name: "hot1") { hot, _ in
            for i in 0..<20 {
                let r = try await hot.call(request("call\(i)"), timeoutMillis: 5000)
                #expect(String(decoding: r.body, as: UTF8.self) == "Hello call\(i)")
                try hot.freeze()
                #expect(try hot.container.freezerState() == .frozen)
            }
            #expect(String(decoding: try await hot.call(request("!env GREETING"), timeoutMillis: 5000).body, as: UTF8.self) == "hi")
            #expect(!hot.isFrozen)
            await hot.close()
            #expect(!FileSystem.exists(hot.iofsDirectory))
        }
    }

    @Test func theRealPythonFDKServesFiftyCallsOnOneHotContainerFrozenBetweenCalls() async throws {
        try await withHotContainer(try FDKImage.layout(), "fn-test/pyfdk:pyfdk", name: "py1") { hot, _ in
            let pid = hot.container.pid
            for i in 0..<50 {
                let r = try await hot.call(request("caller \(i)"), timeoutMillis: 10_000)
                #expect(r.status == 200)
                #expect(String(decoding: r.body, as: UTF8.self) == "Hello caller \(i)")
                #expect(r.header("fn-fdk-version")?.hasPrefix("fdk-python/") == true)
                try hot.freeze()
            }
            #expect(hot.container.pid == pid && hot.container.exit == nil, "one container served every call")
            await hot.close()
        }
    }

    @Test func aTimedOutCallLeavesTheContainerUnusable() async throws {
        try await withHotContainer(try ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:1", name: "hot2") { hot, _ in
            let timeout = await #expect(throws: RunnerError.self) { _ = try await hot.call(request("!sleep 3000"), timeoutMillis: 100) }
            #expect(timeout?.code == .timeout)
            let after = await #expect(throws: RunnerError.self) { _ = try await hot.call(request("again"), timeoutMillis: 1000) }
            #expect(after?.code == .invalidState)
            await hot.close()
        }
    }

    @Test func aFunctionThatExitsBeforeListeningIsAClearErrorAndLeavesNothing() async throws {
        let layout = try ImageFixtures.helloStreamLayout()
        try await RunnerHarness.withImageStore("hot", images: [(layout, "fn-test/hello-stream:false")]) { sandbox, store, env in
            let image = try store.image("fn-test/hello-stream:false")
            let iofsRoot = env.stateDirectory + "/iofs"
            let error = await #expect(throws: RunnerError.self) {
                _ = try await HotContainer.launch(
                    function("fn-test/hello-stream:false"), image: image, store: store, sandbox: sandbox, iofsRoot: iofsRoot, name: "bad")
            }
            #expect(error?.code == .containerStart, "\(String(describing: error))")
            #expect(error?.message.contains("exited before it listened") == true)
            #expect(sandbox.liveContainers.isEmpty)
            #expect(!FileSystem.exists(iofsRoot + "/bad"))
        }
    }
}
