import Runner
import Logging
import OCIImage
import PythonBytecode
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
        /// FN_HOT_PULL_TIMEOUT_MSECS: how long a missing image may take to pull (→ 504).
        public var pullTimeoutMillis: Int = 600_000
        /// FN_MAX_PIDS.
        public var maxPids: Int = 50
        /// FN_USE_IMAGE_USER: run a function as its image's USER instead of Fn's 1000:1000.
        /// Host uid 0 is refused either way (there are no user namespaces to make it safe).
        public var useImageUser = false
        /// FN_MAX_OPEN_FILES, FN_MAX_LOCKED_MEMORY, FN_MAX_PENDING_SIGNALS, FN_MAX_MESSAGE_QUEUE:
        /// each container's rlimits (soft = hard), Fn's defaults unless set.
        public var rlimits: [ContainerSpec.Rlimit] = ContainerSpec.Rlimit.fnDefaults()
        /// FN_FUNCTION_NETWORK: what a function gets unless its `fnrunner.io/network`
        /// annotation asks otherwise. `none` here; `fnrunner serve` defaults to `bridge`.
        public var defaultNetwork: ContainerSpec.Network = .none
        /// Whether a function may ask for `host` (FN_FUNCTION_NETWORK_ALLOW lists host).
        public var allowHostNetwork = false
        /// FN_LOG_FUNCTION_OUTPUT: also copy what functions write to stderr into the node's
        /// log (at info, with app_id, fn_id, container, call_id), beside the call logs in the store.
        public var logFunctionOutput = false

        public init() {}

        /// The network a function gets: its annotation's, else the node's default.
        public func network(for function: FunctionDefinition) throws(RunnerError) -> ContainerSpec.Network {
            guard let asked = function.requestedNetwork else { return defaultNetwork }
            guard let network = ContainerSpec.Network(rawValue: asked) else {
                throw RunnerError(
                    .invalidArgument, "annotation \(FunctionDefinition.networkAnnotation) \"\(asked)\" is not one of none, bridge, host",
                    step: "function network")
            }
            if network == .host && !allowHostNetwork && defaultNetwork != .host {
                throw RunnerError(
                    .invalidArgument, "this node does not allow functions on its host network (FN_FUNCTION_NETWORK_ALLOW=host)",
                    step: "function network")
            }
            return network
        }

        /// Reads FN_HOT_PULL_TIMEOUT_MSECS, FN_MAX_PIDS, FN_USE_IMAGE_USER and the four rlimits; a value that does not parse is an
        /// error naming the variable. (Fn's FN_IOFS_PATH has no use here: a container's iofs is
        /// a private tmpfs on no host path.)
        public static func fromEnvironment(_ values: [String: String]) throws(RunnerError) -> Configuration {
            let env = FnEnvironment(values)
            var c = Configuration()
            c.pullTimeoutMillis = try env.int("FN_HOT_PULL_TIMEOUT_MSECS", default: c.pullTimeoutMillis)
            c.maxPids = try env.int("FN_MAX_PIDS", default: c.maxPids, minimum: 1)
            c.useImageUser = try env.bool("FN_USE_IMAGE_USER", default: c.useImageUser)
            c.logFunctionOutput = try env.bool("FN_LOG_FUNCTION_OUTPUT", default: c.logFunctionOutput)
            typealias R = ContainerSpec.Rlimit
            func value(_ name: String, _ fnDefault: UInt64, minimum: Int) throws(RunnerError) -> UInt64 {
                UInt64(try env.int(name, default: Int(fnDefault), minimum: minimum))
            }
            c.rlimits = R.fnDefaults(
                openFiles: try value("FN_MAX_OPEN_FILES", R.fnOpenFiles, minimum: 1),
                lockedMemory: try value("FN_MAX_LOCKED_MEMORY", R.fnLockedMemory, minimum: 0),
                pendingSignals: try value("FN_MAX_PENDING_SIGNALS", R.fnPendingSignals, minimum: 0),
                messageQueue: try value("FN_MAX_MESSAGE_QUEUE", R.fnMessageQueue, minimum: 0))
            return c
        }
    }

    public let configuration: Configuration
    public let sandbox: Sandbox
    let watcher: DirectoryWatcher
    public let store: ImageStore
    let puller: ImagePuller?
    /// Builds a Python image's bytecode layer before its first container (nil when the store
    /// stacks none: FN_PYTHON_BYTECODE=false).
    let bytecode: BytecodeLayerBuilder?
    let logger: Logger
    /// Templates of the functions that start instances by forking (`fnrunner.io/zygote`).
    let zygotes: Zygotes

    public init(
        configuration: Configuration, sandbox: Sandbox, store: ImageStore, puller: ImagePuller? = nil,
        logger: Logger = Logger(label: "fnrunner.driver")
    ) throws(RunnerError) {
        watcher = try DirectoryWatcher()
        self.configuration = configuration
        self.sandbox = sandbox
        self.store = store
        self.puller = puller
        bytecode =
            store.stacksBytecode
            ? BytecodeLayerBuilder(sandbox: sandbox, store: store, user: configuration.useImageUser ? nil : "1000:1000", logger: logger)
            : nil
        self.logger = logger
        zygotes = Zygotes(logger: logger)
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

    /// The image of `reference`, pulled (bounded by the pull timeout) if the store lacks it. A
    /// failed pull is Fn's "Failed to pull image" with the registry's 404 or 401, else 502.
    func resolveImage(_ reference: String, onPull: (@Sendable (Double) -> Void)? = nil) async throws(RunnerError) -> ImageRecord {
        do {
            return try store.image(reference)
        } catch where error.code == .notFound {
            guard let puller else { throw CallErrors.pullFailed(reference, error) }
            let t0 = MonotonicClock.nowNanos()
            defer { onPull?(Double(MonotonicClock.nowNanos() - t0) / 1e9) }
            let pull = { () async throws(RunnerError) -> ImageRecord in
                do throws(RunnerError) { return try await puller.pull(reference) } catch { throw CallErrors.pullFailed(reference, error) }
            }
            let limit = AgentConfiguration.duration(configuration.pullTimeoutMillis)
            guard let limit else { return try await pull() }
            // The pull cannot be cancelled half-way; after a timeout it goes on by itself (the
            // image is still wanted, and the puller shares it with the next launch).
            let pulled = AsyncValue<Result<ImageRecord, RunnerError>>()
            Task {
                do throws(RunnerError) { pulled.set(.success(try await pull())) } catch { pulled.set(.failure(error)) }
            }
            let outcome = await raceWithTimeout(limit, { await pulled.wait() })
            guard let outcome else { throw CallErrors.pullTimeout() }
            return try outcome.get()
        }
    }

    /// The container spec of a task: the image's process and the function's limits and config.
    func spec(for task: ContainerTask) async throws(RunnerError) -> (ContainerSpec, ImageProcess) {
        let image = try await resolveImage(task.function.image, onPull: task.onPull)
        // Once per image (pulled now, or imported without a build): later starts find the layer.
        if let bytecode, bytecode.needsBuild(image) { await bytecode.ensure(image) }
        // An image not unpacked yet (imported, not pulled) is unpacked here: seconds, on a
        // thread made for it.
        let (layers, config) = try await BlockingThread.run { () throws(RunnerError) in
            (try self.store.rootfsLayers(image), try self.store.config(of: image))
        }
        // Fn runs every function as 1000:1000 whatever the image says; the image's own USER
        // is resolved only when the operator opted in.
        let process = try ImageProcess.make(config: config, layers: layers, user: configuration.useImageUser ? nil : "1000:1000")
        var spec = ContainerSpec(layers: layers, argv: process.argv)
        spec.env = RunnerEnv.merge(process.env, task.function.environment + task.extraEnvironment)
        spec.workingDirectory = process.workingDirectory
        if process.uid == 0 {
            throw RunnerError(
                .invalidArgument, "the image \(task.function.image) runs as root (uid 0), and functions never run as host root",
                step: "resolve user")
        }
        spec.uid = process.uid
        spec.gid = process.gid
        spec.limits.memoryBytes = task.function.memoryMB << 20
        spec.limits.cpuMillicores = task.function.cpuMillicores > 0 ? Int(task.function.cpuMillicores) : nil
        spec.limits.pids = configuration.maxPids
        spec.rlimits = configuration.rlimits
        spec.network = try configuration.network(for: task.function)
        return (spec, process)
    }

    /// A connection to the app's syslog for a new container's output, or nil without a
    /// syslog_url; one that cannot be made is Fn's "Syslog Unavailable" (500).
    func syslog(for task: ContainerTask, _ severity: SyslogWriter.Severity) async throws(RunnerError) -> SyslogWriter? {
        guard let url = task.function.syslogURL, !url.isEmpty else { return nil }
        do {
            return try await SyslogWriter.connect(
                url: url, tag: "app_id=\(task.function.appID),fn_id=\(task.function.fnID)", severity: severity, logger: logger)
        } catch {
            throw CallErrors.syslogUnavailable(error)
        }
    }

    /// Bounds of a container's /tmp/iofs: room for the FDK's sockets and links, not for data.
    public static let iofsSizeBytes: UInt64 = 1 << 20
    public static let iofsInodes: UInt64 = 64

    private func startHTTPStream(_ task: ContainerTask) async throws(RunnerError) -> HotContainer {
        var phases = StartPhases()
        if task.function.usesPythonZygote, let forked = try await zygotes.start(task, driver: self, phases: &phases) {
            reportStarted(task, format: FunctionFormat.httpStream.rawValue, phases)
            return forked
        }
        // A cancelled start (its agent's run was cancelled) makes no container of its own either.
        if Task.isCancelled { throw CallErrors.startCancelled("start container") }
        var (spec, _) = try await spec(for: task)
        phases.mark("image")
        // A fresh private tmpfs per container, reached only through its descriptor. Once the start
        // is over, connected or not, the runner never looks there again and keeps no descriptor
        // of it (the mount lives on in the container's namespace for the FDK).
        let iofs = try PrivateTmpfs(sizeBytes: Self.iofsSizeBytes, inodes: Self.iofsInodes, uid: spec.uid, gid: spec.gid)
        defer { iofs.close() }
        spec.attachedMounts = [.init(fd: iofs.fd, target: "/tmp/iofs")]
        let watch = try watcher.watch(iofs.procPath)
        let output = try await sharedOutput(for: task)
        let container: Container
        spec.stdout = output.writeFD
        spec.stderr = output.writeFD
        do {
            container = try await sandbox.startOnWorkerThread(spec, name: task.name)
        } catch {
            output.close()
            throw error
        }
        output.containerStarted()
        phases.sandboxStarted(container)
        let hot = HotContainer(
            container: container, output: output, throttling: task.function.cpuMillicores > 0, onThaw: task.onThaw,
            onReclaim: task.onReclaim)
        do {
            try await hot.waitUntilReady(directory: iofs.fd, watch: watch, timeout: task.startTimeout, maxHeaderBytes: task.maxResponseHeaderBytes)
        } catch {
            await hot.close()
            throw error
        }
        phases.mark("ready")
        reportStarted(task, format: FunctionFormat.httpStream.rawValue, phases)
        return hot
    }

    /// The one pipe an http-stream container's stdout and stderr share, so syslog gets them at
    /// one severity: info.
    func sharedOutput(for task: ContainerTask) async throws(RunnerError) -> ContainerOutput {
        try ContainerOutput(
            name: task.name, logger: logger, syslog: try await syslog(for: task, .info), nodeLog: nodeLog(for: task, stream: "stdout+stderr"))
    }

    /// Where a container's output goes in the node's own log, when FN_LOG_FUNCTION_OUTPUT asks.
    func nodeLog(for task: ContainerTask, stream: String) -> ContainerOutput.NodeLog? {
        guard configuration.logFunctionOutput else { return nil }
        return ContainerOutput.NodeLog(logger: logger, metadata: task.function.logMetadata(container: task.name), stream: stream)
    }

    public var startPaths: ContainerStartPaths? {
        let counts = sandbox.startCounts
        let zygote = zygotes.counts
        var paths = ContainerStartPaths(pooled: counts.pooled, direct: counts.direct, poolReady: sandbox.pooledSandboxesReady)
        paths.forked = zygote.forked
        paths.zygoteFallbacks = zygote.fallbacks
        return paths
    }

    public func shutdown() async { await zygotes.closeAll() }

    public func functionChanged(fnID: String, to definition: FunctionDefinition?) {
        zygotes.functionChanged(fnID: fnID, to: definition)
    }

    /// The pids (host) of the zygote templates alive now: one per function that opted in and
    /// has started an instance.
    public var zygoteTemplatePIDs: [Int32] { zygotes.templates.map(\.container.pid) }

    public func runCold(_ task: ContainerTask, request: FunctionRequest, log: CallLog) async throws(RunnerError) -> ColdResult {
        try await ColdContainer.run(task, request: request, log: log, driver: self)
    }
}

/// Starts a container on a worker thread: a start blocks for milliseconds (clone, the child's
/// set-up, for a bridge start without the pool its veth), and must not hold one of the few
/// threads that run every call's tasks.
extension Sandbox {
    func startOnWorkerThread(_ spec: ContainerSpec, name: String?) async throws(RunnerError) -> Container {
        try await BlockingThread.run { () throws(RunnerError) in try self.start(spec, name: name) }
    }
}
