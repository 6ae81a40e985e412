import Logging
import OCIImage
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The container driver on this project's own runtime: images from the image store (pulled
/// when missing), containers from the sandbox.
public final class NativeDriver: ContainerDriver {
    public struct Configuration: Sendable {
        /// Where the containers' iofs directories are made (host side). FN_IOFS_PATH.
        public var iofsRoot: String
        /// FN_HOT_PULL_TIMEOUT_MSECS: how long a missing image may take to pull (→ 504).
        public var pullTimeoutMillis: Int = 600_000
        /// FN_MAX_PIDS.
        public var maxPids: Int = 50

        public init(iofsRoot: String) { self.iofsRoot = iofsRoot }

        /// Reads FN_IOFS_PATH, FN_HOT_PULL_TIMEOUT_MSECS and FN_MAX_PIDS; a value that does not
        /// parse is an error naming the variable.
        public static func fromEnvironment(_ values: [String: String], defaultIOFSRoot: String) throws(RunnerError) -> Configuration {
            let env = FnEnvironment(values)
            var c = Configuration(iofsRoot: env.string("FN_IOFS_PATH") ?? defaultIOFSRoot)
            c.pullTimeoutMillis = try env.int("FN_HOT_PULL_TIMEOUT_MSECS", default: c.pullTimeoutMillis)
            c.maxPids = try env.int("FN_MAX_PIDS", default: c.maxPids, minimum: 1)
            return c
        }
    }

    public let configuration: Configuration
    public let sandbox: Sandbox
    let watcher: DirectoryWatcher
    public let store: ImageStore
    let puller: ImagePuller?
    let logger: Logger

    public init(
        configuration: Configuration, sandbox: Sandbox, store: ImageStore, puller: ImagePuller? = nil,
        logger: Logger = Logger(label: "fnrunner.driver")
    ) throws(RunnerError) {
        watcher = try DirectoryWatcher()
        self.configuration = configuration
        self.sandbox = sandbox
        self.store = store
        self.puller = puller
        self.logger = logger
        // A function that exits while the runner writes to its stdin or socket must be an error
        // for that call, not a signal that ends the runner. (Containers get default signal
        // dispositions back before exec.)
        signal(SIGPIPE, SIG_IGN)
    }

    public func startHot(_ task: ContainerTask) async throws(RunnerError) -> any HotContainerHandle {
        let format = FunctionFormat(rawValue: task.function.format)
        switch format {
        case .httpStream: return try await startHTTPStream(task)
        case .http, .json: return try await StdioHotContainer.start(task, format: format!, driver: self)
        case .cold, nil: throw CallErrors.unknownFormat(task.function.format)
        }
    }

    /// The image of `reference`, pulled (bounded by the pull timeout) if the store lacks it.
    func resolveImage(_ reference: String, onPull: (@Sendable (Double) -> Void)? = nil) async throws(RunnerError) -> ImageRecord {
        do {
            return try store.image(reference)
        } catch where error.code == .notFound && puller != nil {
            let puller = puller!
            let t0 = MonotonicClock.nowNanos()
            defer { onPull?(Double(MonotonicClock.nowNanos() - t0) / 1e9) }
            let limit = AgentConfiguration.duration(configuration.pullTimeoutMillis)
            guard let limit else { return try await puller.pull(reference) }
            // The pull cannot be cancelled half-way; after a timeout it goes on by itself (the
            // image is still wanted, and the puller shares it with the next launch).
            let pulled = AsyncValue<Result<ImageRecord, RunnerError>>()
            Task {
                do throws(RunnerError) { pulled.set(.success(try await puller.pull(reference))) } catch { pulled.set(.failure(error)) }
            }
            let outcome = await raceWithTimeout(limit, { await pulled.wait() }, discard: { _ in })
            guard let outcome else { throw CallErrors.pullTimeout() }
            return try outcome.get()
        }
    }

    /// The container spec of a task: the image's process and the function's limits and config.
    func spec(for task: ContainerTask) async throws(RunnerError) -> (ContainerSpec, ImageProcess) {
        let image = try await resolveImage(task.function.image, onPull: task.onPull)
        let layers = try store.rootfsLayers(image)
        let process = try ImageProcess.make(config: try store.config(of: image), layers: layers)
        var spec = ContainerSpec(layers: layers, argv: process.argv)
        spec.env = RunnerEnv.merge(process.env, task.function.environment + task.extraEnvironment)
        spec.workingDirectory = process.workingDirectory
        spec.uid = process.uid
        spec.gid = process.gid
        spec.limits.memoryBytes = task.function.memoryMB << 20
        spec.limits.cpuMillicores = task.function.cpuMillicores > 0 ? Int(task.function.cpuMillicores) : nil
        spec.limits.pids = configuration.maxPids
        return (spec, process)
    }

    private func startHTTPStream(_ task: ContainerTask) async throws(RunnerError) -> HotContainer {
        var (spec, process) = try await spec(for: task)
        // A fresh iofs dir per container: FDKs leave their sockets behind when they exit.
        let iofs = configuration.iofsRoot + "/" + task.name
        try FileSystem.removeTree(iofs)
        try FileSystem.makeDirectories(iofs, mode: 0o755)
        chown(iofs, process.uid, process.gid)
        spec.bindMounts = [.init(source: iofs, target: "/tmp/iofs")]
        let output: ContainerOutput
        let watch: DirectoryWatch
        let container: Container
        do {
            watch = try watcher.watch(iofs)
            output = try ContainerOutput(name: task.name, logger: logger)
        } catch {
            try? FileSystem.removeTree(iofs)
            throw error
        }
        spec.stdout = output.writeFD
        spec.stderr = output.writeFD
        do {
            container = try await sandbox.startOnWorkerThread(spec, name: task.name)
        } catch {
            output.close()
            try? FileSystem.removeTree(iofs)
            throw error
        }
        output.containerStarted()
        let hot = HotContainer(
            container: container, iofsDirectory: iofs, output: output, throttling: task.function.cpuMillicores > 0, onThaw: task.onThaw,
            onReclaim: task.onReclaim)
        do {
            try await hot.waitUntilReady(watch: watch, timeout: task.startTimeout)
        } catch {
            await hot.close()
            throw error
        }
        return hot
    }

    public var startPaths: ContainerStartPaths? {
        let counts = sandbox.startCounts
        return ContainerStartPaths(pooled: counts.pooled, direct: counts.direct, poolReady: sandbox.pooledSandboxesReady)
    }

    public func runCold(_ task: ContainerTask, request: FunctionRequest, log: CallLog) async throws(RunnerError) -> ColdResult {
        try await ColdContainer.run(task, request: request, log: log, driver: self)
    }
}

/// Starts a container on a worker thread: a start blocks for milliseconds (clone, the child's
/// set-up, on cgroup v1 an RCU grace period for the cgroup attach), and must not hold one of the
/// few threads that run every call's tasks.
extension Sandbox {
    func startOnWorkerThread(_ spec: ContainerSpec, name: String) async throws(RunnerError) -> Container {
        try await BlockingThread.run { () throws(RunnerError) in try self.start(spec, name: name) }
    }
}
