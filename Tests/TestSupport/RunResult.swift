import Sandbox

/// A finished container's exit and output.
public struct RunResult: Sendable {
    public var exit: ContainerExit
    public var stdout: String
    public var stderr: String
}

/// Starts `spec` with captured stdout/stderr, waits for it to end, closes it.
public func runToCompletion(_ sandbox: Sandbox, _ spec: ContainerSpec, timeoutMillis: Int = 30_000) async throws -> RunResult {
    let out = try OutputPipe()
    let err = try OutputPipe()
    var spec = spec
    spec.stdout = out.writeFD
    spec.stderr = err.writeFD
    let container = try sandbox.start(spec)
    out.closeWriteEnd()
    err.closeWriteEnd()
    let stdout = await out.readToEnd(timeoutMillis: timeoutMillis)
    let stderr = await err.readToEnd(timeoutMillis: 1000)
    let exit = await container.wait()
    try await container.close()
    return RunResult(exit: exit, stdout: stdout, stderr: stderr)
}

/// A spec for the busybox fixture running as root inside the container (still without
/// capabilities), so that refusals come from the sandbox and not from file permissions.
public func busyboxSpec(_ argv: [String], asRoot: Bool = false) async throws -> ContainerSpec {
    var spec = ContainerSpec(layers: [try await Fixtures.busybox()], argv: argv)
    if asRoot {
        spec.uid = 0
        spec.gid = 0
    }
    return spec
}
