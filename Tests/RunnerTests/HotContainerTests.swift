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

    func request(_ body: String) -> FunctionRequest {
        FunctionRequest(callID: "01CALL", deadline: "2030-01-01T00:00:00Z", body: Array(body.utf8))
    }

    @Test func aHotContainerServesManyCallsFrozenBetweenThem() async throws {
        let layout = try ImageFixtures.helloStreamLayout()
        try await withSandbox("hot") { sandbox, env in
            let store = try ImageStore(dataDirectory: env.stateDirectory + "-images")
            defer { try? FileSystem.removeTree(env.stateDirectory + "-images") }
            let image = try store.importLayout(layout, as: "fn-test/hello-stream:1")
            let hot = try await HotContainer.launch(
                function("fn-test/hello-stream:1"), image: image, store: store, sandbox: sandbox, iofsRoot: env.stateDirectory + "/iofs",
                name: "hot1")
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
        let layout = try FDKImage.layout()
        try await withSandbox("fdkhot") { sandbox, env in
            let store = try ImageStore(dataDirectory: env.stateDirectory + "-images")
            defer { try? FileSystem.removeTree(env.stateDirectory + "-images") }
            let image = try store.importLayout(layout, as: "fn-test/pyfdk:pyfdk")
            let hot = try await HotContainer.launch(
                function("fn-test/pyfdk:pyfdk"), image: image, store: store, sandbox: sandbox, iofsRoot: env.stateDirectory + "/iofs",
                name: "py1")
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
        let layout = try ImageFixtures.helloStreamLayout()
        try await withSandbox("hot") { sandbox, env in
            let store = try ImageStore(dataDirectory: env.stateDirectory + "-images")
            defer { try? FileSystem.removeTree(env.stateDirectory + "-images") }
            let image = try store.importLayout(layout, as: "fn-test/hello-stream:1")
            let hot = try await HotContainer.launch(
                function("fn-test/hello-stream:1"), image: image, store: store, sandbox: sandbox, iofsRoot: env.stateDirectory + "/iofs",
                name: "hot2")
            let timeout = await #expect(throws: RunnerError.self) { _ = try await hot.call(request("!sleep 3000"), timeoutMillis: 100) }
            #expect(timeout?.code == .timeout)
            let after = await #expect(throws: RunnerError.self) { _ = try await hot.call(request("again"), timeoutMillis: 1000) }
            #expect(after?.code == .invalidState)
            await hot.close()
        }
    }

    @Test func aFunctionThatExitsBeforeListeningIsAClearErrorAndLeavesNothing() async throws {
        let layout = try ImageFixtures.helloStreamLayout()
        try await withSandbox("hot") { sandbox, env in
            let store = try ImageStore(dataDirectory: env.stateDirectory + "-images")
            defer { try? FileSystem.removeTree(env.stateDirectory + "-images") }
            let image = try store.importLayout(layout, as: "fn-test/hello-stream:false")
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
