import CgroupDriver
import OCIImage
import RunnerOS
import Sandbox
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A hot http-stream function in a sandbox: launched from an image, ready when its FDK's socket
/// appears in the container's private iofs directory, called over one kept-alive connection,
/// frozen between calls and thawed before the next.
///
/// One call at a time (the slot queue guarantees it); a failed or timed-out call leaves the
/// connection unusable, and the container must then be closed, as Fn ends such containers.
public final class HotContainer: Sendable {
    public let function: FunctionDefinition
    public let container: Container
    /// The host side of the container's /tmp/iofs.
    public let iofsDirectory: String

    private struct State {
        /// nil while a call has it, and for good after a call failed.
        var connection: HTTPStreamConnection?
        var frozen = false
    }
    private let state = Mutex(State())

    init(function: FunctionDefinition, container: Container, iofsDirectory: String) {
        self.function = function
        self.container = container
        self.iofsDirectory = iofsDirectory
    }

    /// Starts the function and waits (up to `readyTimeoutMillis`) for its socket.
    public static func launch(
        _ function: FunctionDefinition, image: ImageRecord, store: ImageStore, sandbox: Sandbox, iofsRoot: String,
        name: String, readyTimeoutMillis: Int = 30_000
    ) async throws(RunnerError) -> HotContainer {
        guard function.format == "http-stream" else {
            throw RunnerError(.unsupported, "format \(function.format) is not served by hot containers", step: "launch")
        }
        let layers = try store.rootfsLayers(image)
        let process = try ImageProcess.make(config: try store.config(of: image), layers: layers)
        // A fresh iofs dir per container: FDKs leave their sockets behind when they exit.
        let iofs = iofsRoot + "/" + name
        try FileSystem.removeTree(iofs)
        try FileSystem.makeDirectories(iofs, mode: 0o755)
        chown(iofs, process.uid, process.gid)
        var spec = ContainerSpec(layers: layers, argv: process.argv)
        spec.env = RunnerEnv.merge(process.env, function.environment)
        spec.workingDirectory = process.workingDirectory
        spec.uid = process.uid
        spec.gid = process.gid
        spec.limits.memoryBytes = function.memoryMB << 20
        spec.limits.cpuMillicores = function.cpuMillicores > 0 ? Int(function.cpuMillicores) : nil
        spec.limits.pids = 50
        spec.bindMounts = [.init(source: iofs, target: "/tmp/iofs")]
        let container: Container
        do {
            container = try sandbox.start(spec, name: name)
        } catch {
            try? FileSystem.removeTree(iofs)
            throw error
        }
        let hot = HotContainer(function: function, container: container, iofsDirectory: iofs)
        do {
            try await hot.waitUntilReady(timeoutMillis: readyTimeoutMillis)
        } catch {
            await hot.close()
            throw error
        }
        return hot
    }

    private func waitUntilReady(timeoutMillis: Int) async throws(RunnerError) {
        let deadline = MonotonicClock.nowNanos() + UInt64(timeoutMillis) * 1_000_000
        let socket = iofsDirectory + "/lsnr.sock"
        while !FileSystem.exists(socket) {
            if let exit = container.exit {
                throw RunnerError(.containerStart, "the function exited before it listened (\(exit))", step: "wait for function")
            }
            if MonotonicClock.nowNanos() > deadline {
                throw RunnerError(.timeout, "the function did not create \(FunctionDefinition.listenerPath) within \(timeoutMillis) ms", step: "wait for function")
            }
            try? await Task.sleep(nanoseconds: 1_000_000)
        }
        let connection = try HTTPStreamConnection(socketPath: socket)
        state.withLock { $0.connection = connection }
    }

    /// Sends one call, thawing the container first if it is frozen. Blocks a thread of its own.
    public func call(_ request: FunctionRequest, timeoutMillis: Int, maxBodyBytes: Int = 0) async throws(RunnerError) -> FunctionResponse {
        try thawIfFrozen()
        guard let connection = state.withLock({ s -> HTTPStreamConnection? in
            defer { s.connection = nil }
            return s.connection
        }) else {
            throw RunnerError(.invalidState, "the function's connection is busy or broken", step: "call function")
        }
        let deadline = MonotonicClock.nowNanos() + UInt64(timeoutMillis) * 1_000_000
        let response = try await BlockingThread.run { () throws(RunnerError) in
            try connection.call(request, deadlineNanos: deadline, maxBodyBytes: maxBodyBytes)
        }
        state.withLock { $0.connection = connection }  // only a clean exchange makes it reusable
        return response
    }

    /// Freezes the idle container (a failed freeze means the container must be ended).
    public func freeze() throws(RunnerError) {
        try container.freeze()
        state.withLock { $0.frozen = true }
    }

    private func thawIfFrozen() throws(RunnerError) {
        guard state.withLock({ $0.frozen }) else { return }
        try container.thaw()
        state.withLock { $0.frozen = false }
    }

    public var isFrozen: Bool { state.withLock { $0.frozen } }

    /// Whether the kernel killed something in the container for its memory limit.
    public var wasOOMKilled: Bool { ((try? container.memoryEvents())?.oomKills ?? 0) > 0 }

    /// After a broken call: did the container die of its memory limit? Waits up to `timeout`
    /// for the process to end, since the connection can fail before the kill is visible.
    public func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool {
        if wasOOMKilled { return true }
        let exit = await raceWithTimeout(timeout, { await self.container.wait() }, discard: { _ in })
        return exit?.outOfMemory == true || wasOOMKilled
    }

    /// Ends the container and removes its iofs directory.
    public func close() async {
        state.withLock { $0.connection = nil }
        try? await container.close()
        try? FileSystem.removeTree(iofsDirectory)
    }
}

/// Environment lists (NAME=VALUE) merged so that later entries replace earlier ones by name.
enum RunnerEnv {
    static func merge(_ base: [String], _ overrides: [String]) -> [String] {
        func name(_ e: String) -> Substring { e.split(separator: "=", maxSplits: 1).first ?? Substring(e) }
        let names = Set(overrides.map(name))
        return base.filter { !names.contains(name($0)) } + overrides
    }
}
