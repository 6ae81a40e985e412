import NativeRuntime
import OCIImage
import Runner
import RunnerOS
import Sandbox
import TestSupport
import Testing

/// Functions run as Fn's 1000:1000 whatever the image says, and never as host uid 0.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"))
struct FunctionUserTests {
    /// Answers only when it runs as 1000:1000 (else it exits before listening).
    static let script = #"[ "$(id -u):$(id -g)" = "1000:1000" ] && exec /bin/hello-stream; echo "ran as $(id -u):$(id -g)" >&2; exit 7"#

    func function(_ image: String) -> FunctionDefinition {
        FunctionDefinition(appID: "app1", appName: "myapp", fnID: "fn1", fnName: "user", image: image, fnConfig: ["SCRIPT": Self.script])
    }

    @Test func anImageWhoseUserIsRootRunsAs1000ByDefault() async throws {
        try await RunnerHarness.withImageStore("user", images: [(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:root-sh")]) {
            sandbox, store, env in
            let hot = try await RunnerHarness.driver(sandbox, store, env).startHot(
                RunnerHarness.task(function("fn-test/hello-stream:root-sh"), name: "user"))
            let r = try await hot.call(RunnerHarness.request("uid"), timeout: .seconds(5), maxBodyBytes: 0, log: CallLog())
            #expect(RunnerHarness.text(r) == "Hello uid")
            await hot.close()
        }
    }

    @Test func withTheImagesUserARootUserIsRefusedAndNothingStarts() async throws {
        try await RunnerHarness.withImageStore("user", images: [(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:root-sh")]) {
            sandbox, store, _ in
            var config = NativeDriver.Configuration()
            config.useImageUser = true
            let driver = try NativeDriver(configuration: config, sandbox: sandbox, store: store)
            let error = await #expect(throws: RunnerError.self) {
                _ = try await driver.startHot(RunnerHarness.task(function("fn-test/hello-stream:root-sh"), name: "root"))
            }
            #expect(error?.code == .invalidArgument && error?.message.contains("runs as root (uid 0)") == true, "\(String(describing: error))")
            #expect(error?.callStatus == 400)
            #expect(sandbox.liveContainers.isEmpty)
        }
    }

    @Test func theSettingIsReadFromFnUseImageUser() throws {
        #expect(try NativeDriver.Configuration.fromEnvironment(["FN_USE_IMAGE_USER": "true"]).useImageUser)
        #expect(try !NativeDriver.Configuration.fromEnvironment([:]).useImageUser)
        #expect(throws: RunnerError.self) { try NativeDriver.Configuration.fromEnvironment(["FN_USE_IMAGE_USER": "perhaps"]) }
    }
}
