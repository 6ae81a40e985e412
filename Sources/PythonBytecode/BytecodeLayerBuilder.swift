import CRunnerShim
import Logging
import OCIImage
import RunnerOS
import Sandbox
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Builds an image's bytecode layer (see `BytecodeLayers`) by running the image's own `python3`
/// in a sandbox like a function's: the same user, no network, no capabilities, seccomp, a
/// read-only rootfs, memory, CPU and pids limits and a deadline. The one thing it may write is
/// a private tmpfs, whose contents `CompiledTree` checks on the way into the layer. An image
/// without `python3` on its PATH costs a few lookups and no container.
///
/// A build that fails leaves the image as it was, records why, and is tried again only on the
/// next pull or import of the image. Builds of one image in one process share one run.
public final class BytecodeLayerBuilder: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// A layer was made now.
        case built(files: Int, bytes: Int64, millis: Int)
        /// The image had its layer already.
        case present
        /// No layer, and why (also recorded in the store).
        case skipped(String)
    }

    public struct Limits: Sendable {
        public var memoryBytes: UInt64 = 512 << 20
        public var cpuMillicores = 1000
        public var pids = 64
        public var outputBytes: UInt64 = 256 << 20
        public var outputInodes: UInt64 = 65_536
        public var timeout: Duration = .seconds(120)
        public init() {}
    }

    /// The skip reason of an image that is not a Python image.
    public static let noInterpreter = "the image has no python3 on its PATH"

    let sandbox: Sandbox
    let store: ImageStore
    /// The user functions of these images run as ("1000:1000", Fn's), or nil for the image's own.
    let user: String?
    let limits: Limits
    let logger: Logger
    private let running = Mutex<[Digest: AsyncValue<Outcome>]>([:])
    /// Images this process knows to be settled (built or skipped): the check on every start.
    private let settled = Mutex<Set<Digest>>([])

    public init(sandbox: Sandbox, store: ImageStore, user: String? = "1000:1000", limits: Limits = Limits(), logger: Logger) {
        self.sandbox = sandbox
        self.store = store
        self.user = user
        self.limits = limits
        self.logger = logger
    }

    /// Whether `record` still needs a build attempt (no layer and no record of why not).
    public func needsBuild(_ record: ImageRecord) -> Bool {
        if settled.withLock({ $0.contains(record.config) }) { return false }
        if store.bytecode.state(record.config) != .unknown {
            settled.withLock { _ = $0.insert(record.config) }
            return false
        }
        return true
    }

    /// Makes the layer of `record` unless it has one; `retryingSkipped` tries again an image
    /// that got none before (a new pull or import: the reason may have gone).
    @discardableResult
    public func ensure(_ record: ImageRecord, retryingSkipped: Bool = false) async -> Outcome {
        switch store.bytecode.state(record.config) {
        case .built: return .present
        case .skipped(let reason) where !retryingSkipped: return .skipped(reason)
        default: break
        }
        let (value, owner) = running.withLock { runs -> (AsyncValue<Outcome>, Bool) in
            if let v = runs[record.config] { return (v, false) }
            let v = AsyncValue<Outcome>()
            runs[record.config] = v
            return (v, true)
        }
        guard owner else { return await value.waitIgnoringCancellation() }
        let outcome = await build(record)
        settled.withLock { _ = $0.insert(record.config) }
        running.withLock { $0[record.config] = nil }
        value.set(outcome)
        return outcome
    }

    private func build(_ record: ImageRecord) async -> Outcome {
        let started = MonotonicClock.nowNanos()
        let image = record.config
        do throws(RunnerError) {
            // An image not unpacked yet is unpacked here: seconds, on a thread made for it (its
            // config read with it, as a start does).
            let (layers, config) = try await BlockingThread.run { () throws(RunnerError) in
                (try self.store.imageLayers(record), try self.store.config(of: record))
            }
            let process = try ImageProcess.make(config: config, layers: layers, user: user)
            guard let python = Self.interpreter(env: process.env, layers: layers) else {
                return skip(record, Self.noInterpreter)
            }
            if process.uid == 0 { return skip(record, "the image runs as root, which functions never do") }
            let roots = Self.roots(workingDirectory: process.workingDirectory, argv: process.argv)
            let temp = try store.bytecode.makeTemporary(for: image)
            let summary: CompiledTree.Summary
            do throws(RunnerError) {
                summary = try await compile(layers: layers, process: process, python: python, roots: roots, into: temp)
            } catch {
                try? FileSystem.removeTree(temp)
                throw error
            }
            if summary.files == 0 {
                try? FileSystem.removeTree(temp)
                if summary.rejected > 0 {
                    return skip(record, "no file the compile wrote may go into a layer (\(summary.rejected), e.g. \(summary.reasons))")
                }
                return skip(record, "nothing to compile: every module of the image has its bytecode")
            }
            try store.bytecode.commit(temp, for: image)
            let millis = Int((MonotonicClock.nowNanos() - started) / 1_000_000)
            logger.info(
                "built the bytecode layer",
                metadata: [
                    "image": "\(record.name)", "files": "\(summary.files)", "bytes": "\(summary.bytes)", "ms": "\(millis)",
                    "left_out": "\(summary.rejected)",
                ])
            if summary.rejected > 0 {
                logger.notice("a bytecode build wrote files a layer may not hold", metadata: ["image": "\(record.name)", "examples": "\(summary.reasons)"])
            }
            return .built(files: summary.files, bytes: summary.bytes, millis: millis)
        } catch {
            logger.warning("the bytecode build failed; the image runs without it", metadata: ["image": "\(record.name)", "error": "\(error)"])
            return skip(record, "the build failed: \(error)")
        }
    }

    private func skip(_ record: ImageRecord, _ reason: String) -> Outcome {
        do {
            try store.bytecode.skip(record.config, reason: reason)
        } catch {
            logger.warning("cannot record the bytecode state", metadata: ["image": "\(record.name)", "error": "\(error)"])
        }
        logger.debug("no bytecode layer", metadata: ["image": "\(record.name)", "reason": "\(reason)"])
        return .skipped(reason)
    }

    /// Whether `record` is a Python image (a `python3` on its PATH), recording that it is not:
    /// a caller can skip making a sandbox for the build.
    public static func isPythonImage(_ record: ImageRecord, in store: ImageStore) throws(RunnerError) -> Bool {
        let env = (try store.config(of: record)).config?.Env ?? []
        if interpreter(env: env, layers: try store.imageLayers(record)) != nil { return true }
        try store.bytecode.skip(record.config, reason: noInterpreter)
        return false
    }

    /// The image's `python3` as its PATH finds it in the merged view (a link counts: the
    /// container resolves it, the runner never does).
    static func interpreter(env: [String], layers: [String]) -> String? {
        let path = env.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? ContainerSpec.defaultPath
        for dir in path.split(separator: ":") where dir.hasPrefix("/") {
            let relative = dir.split(separator: "/").joined(separator: "/") + "/python3"
            if let e = OverlayLookup.entry(relative, in: layers), e.isRegularFile || (e.mode & S_IFMT) == S_IFLNK {
                return "/" + relative
            }
        }
        return nil
    }

    /// Where the function's own modules are, beside `sys.path`: its working directory and the
    /// directories of `.py` files its command names.
    static func roots(workingDirectory: String, argv: [String]) -> [String] {
        var roots: [String] = workingDirectory == "/" ? [] : [workingDirectory]
        for arg in argv where arg.hasPrefix("/") && arg.hasSuffix(".py") {
            let dir = String(arg[..<arg.lastIndex(of: "/")!])
            if !dir.isEmpty && !roots.contains(dir) { roots.append(dir) }
        }
        return roots
    }

    /// Runs the compile in a container and copies its output into `temp`.
    private func compile(layers: [String], process: ImageProcess, python: String, roots: [String], into temp: String)
        async throws(RunnerError) -> CompiledTree.Summary
    {
        let output = try PrivateTmpfs(
            sizeBytes: limits.outputBytes, inodes: limits.outputInodes, uid: process.uid, gid: process.gid)
        defer { output.close() }
        var fds: [Int32] = [-1, -1]
        let rc = rn_pipe_cloexec(&fds)
        if rc < 0 { throw .system("pipe2", errno: -rc, "cannot make the build's output pipe") }
        defer { close(fds[0]) }
        var spec = ContainerSpec(layers: layers, argv: CompileScript.argv(interpreter: python, roots: roots))
        spec.env = process.env
        spec.uid = process.uid
        spec.gid = process.gid
        spec.limits = .init(memoryBytes: limits.memoryBytes, cpuMillicores: min(limits.cpuMillicores, sandbox.hostCPUs * 1000), pids: limits.pids)
        spec.attachedMounts = [.init(fd: output.fd, target: CompileScript.outputDirectory)]
        spec.stdout = fds[1]
        let container: Container
        do {
            let ready = spec
            container = try await BlockingThread.run { () throws(RunnerError) in try self.sandbox.start(ready) }
        } catch {
            close(fds[1])
            throw error
        }
        close(fds[1])
        let exit = await waitOrKill(container)
        try? await container.close()
        guard let exit else {
            throw RunnerError(.timeout, "the compile did not finish within \(limits.timeout)", step: "compile bytecode")
        }
        let said = Self.drain(fds[0])
        guard exit.shellStatus == 0 else {
            throw RunnerError(.invalidState, "python3 ended with \(exit)", step: "compile bytecode")
        }
        logger.debug("bytecode compile finished", metadata: ["counts": "\(said)"])
        return try await BlockingThread.run { () throws(RunnerError) in
            try CompiledTree.copy(from: output.fd, imageLayers: layers, into: temp)
        }
    }

    /// The exit, or nil once the deadline passed (the container is killed then).
    private func waitOrKill(_ container: Container) async -> ContainerExit? {
        let deadline = limits.timeout
        let exit = await withTaskGroup(of: ContainerExit?.self) { group in
            group.addTask { await container.waitUnlessCancelled() }
            group.addTask {
                try? await Task.sleep(for: deadline)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if exit == nil { try? container.kill() }
        return exit
    }

    /// What the compile printed (its one line of counts), at most 4 KiB.
    static func drain(_ fd: Int32) -> String {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmed : ""
    }
}
