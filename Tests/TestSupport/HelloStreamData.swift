import RunnerOS

/// A scratch runner environment and data directory with hello-stream imported as
/// fn-test/hello-stream:1, for tests that start `fnrunner serve`; both are removed afterwards,
/// and one such test runs at a time. A failed import throws with the command's stderr.
public func withHelloStreamData(_ label: String, _ body: (TestEnvironment, String) async throws -> Void) async throws {
    try await withSharedGate {
        let env = TestEnvironment(label)
        defer { env.cleanUp() }
        let data = env.stateDirectory + "-data"
        defer { try? FileSystem.removeTree(data) }
        let imported = try Subprocess.fnrunner(["import", "--data-dir", data, try await ImageFixtures.helloStreamLayout(), "--name", "fn-test/hello-stream:1"])
        if await imported.exit() != 0 {
            throw RunnerError(.containerStart, "fnrunner import of hello-stream failed: \(imported.stderr)", step: "test setup")
        }
        try await body(env, data)
    }
}
