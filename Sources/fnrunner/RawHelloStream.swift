import NativeRuntime
import Runner
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// hello-stream in a sandbox of its own, reached through its iofs bind mount with the agent's
/// own client: a call with nothing of the agent around it.
struct RawHelloStream {
    let container: Container
    let connection: HTTPStreamConnection
    let iofs: String

    static func start(_ sandbox: Sandbox, _ base: ContainerSpec, stateDirectory: String) async throws -> RawHelloStream {
        let iofs = stateDirectory + "/bench-iofs-\(getpid())"
        try FileSystem.makeDirectories(iofs)
        var spec = base
        spec.argv = ["/bin/hello-stream"]
        spec.env = ["FN_FORMAT=http-stream", "FN_LISTENER=unix:/tmp/iofs/lsnr.sock"]
        spec.bindMounts = [.init(source: iofs, target: "/tmp/iofs")]
        chown(iofs, spec.uid, spec.gid)
        let container: Container
        do {
            container = try sandbox.start(spec)
        } catch {
            try? FileSystem.removeTree(iofs)
            throw error
        }
        do {
            for _ in 0..<2000 where !FileSystem.exists(iofs + "/lsnr.sock") { try await Task.sleep(for: .milliseconds(1)) }
            // Read as the agent's connections are, so the two calls differ by the agent alone.
            let connection = try HTTPStreamConnection(socketPath: iofs + "/lsnr.sock")
            connection.readOnSharedLoop()
            let raw = RawHelloStream(container: container, connection: connection, iofs: iofs)
            for _ in 0..<50 { try await raw.call() }
            return raw
        } catch {
            await RawHelloStream.remove(container, iofs)
            throw error
        }
    }

    /// One call, checked: a wrong answer would measure something else.
    func call() async throws(RunnerError) {
        let r = try await connection.call(
            FunctionRequest(callID: "bench", deadline: "2030-01-01T00:00:00Z", body: Array("World".utf8)),
            deadlineNanos: MonotonicClock.nowNanos() + 5_000_000_000)
        if r.status != 200 || r.body != Array("Hello World".utf8) {
            throw RunnerError(.invalidState, "hello-stream answered \(r.status) \(String(decoding: r.body, as: UTF8.self))", step: "bench call")
        }
    }

    func close() async { await Self.remove(container, iofs) }

    private static func remove(_ container: Container, _ iofs: String) async {
        try? await container.close()
        try? FileSystem.removeTree(iofs)
    }
}
