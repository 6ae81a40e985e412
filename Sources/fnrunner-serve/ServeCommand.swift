import ArgumentParser
import CLIOptions
import CgroupDriver
import FoundationEssentials
import Hummingbird
import Logging
import NativeRuntime
import NodeServices
import OCIImage
import Runner
import RunnerAPI
import RunnerGRPC
import RunnerOS
import RunnerStore
import Sandbox
import ServiceLifecycle

/// `fnrunner serve`: one runner node speaking Fn's API, on its embedded store.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve Fn's v2 API, invoke and HTTP triggers from an embedded store.",
        version: FnrunnerVersion.current)

    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var images: StoreOptions
    @OptionGroup var network: FunctionNetworkOptions

    @Option(help: "host:port to listen on (FN_PORT sets the port when this is not given); none for a pure runner without the HTTP API.")
    var listen: String?

    @Option(
        help: "A file of settings (KEY=VALUE lines, as /etc/fnrunner/serve.env): FN_* and OTEL_* variables and these options' long names. Flags and the environment win over it.")
    var config: String?

    @Flag(
        name: .customLong("cgroup-delegated"),
        help: "Make the runner's cgroups inside its own (systemd's Delegate=yes): it moves itself into <own>/runner and its containers go under <own>/<cgroup-root>.")
    var cgroupDelegated = false

    @Option(
        name: .customLong("grpc-listen"),
        help: "host:port for Fn's RunnerProtocol (gRPC), so Fn's load balancer can place calls here (FN_GRPC_PORT: all interfaces).")
    var grpcListen: String?

    mutating func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let fnEnv = FnEnvironment(env)
        let logger = runtime.makeLogger(label: "fnrunner.serve")
        let httpOff = listen == "none"
        let (host, port) = httpOff ? ("127.0.0.1", 0) : try Self.address(listen, fnPort: try fnEnv.int("FN_PORT", default: 8080, minimum: 0))
        var grpcAddress: (String, Int)?
        if let grpcListen {
            grpcAddress = try Self.address(grpcListen, fnPort: 0, option: "--grpc-listen")
        } else if fnEnv.string("FN_GRPC_PORT") != nil {
            let p = try fnEnv.int("FN_GRPC_PORT", default: 9190, minimum: 0)
            guard p <= 65535 else { throw RunnerError(.invalidArgument, "FN_GRPC_PORT must be a port number, not \(p)") }
            grpcAddress = ("0.0.0.0", p)
        }
        let grpcTLS = try RunnerTLS.fromEnvironment(env)
        if httpOff && grpcAddress == nil {
            throw RunnerError(.invalidArgument, "--listen none needs --grpc-listen or FN_GRPC_PORT: the node would take no calls")
        }
        let agentConfig = try AgentConfiguration.fromEnvironment(env)
        let retention = try CallPruner.Configuration.fromEnvironment(env)
        // FN_CALL_RECORDS=false: sync calls leave no record, as on Fn (whose calls API is gone);
        // detached calls keep theirs, which their queue is made of.
        let recordsCalls = try fnEnv.bool("FN_CALL_RECORDS", default: true)
        var driverConfig = try NativeDriver.Configuration.fromEnvironment(env)
        let networkSettings = try network.settings(env)
        driverConfig.defaultNetwork = ContainerSpec.Network(rawValue: networkSettings.defaultNetwork) ?? .none
        driverConfig.allowHostNetwork = networkSettings.allowHost
        // Host iofs directories of earlier versions (a crashed runner's could hold whatever its
        // functions wrote): iofs is a private tmpfs now, so nothing here is in use.
        try? FileSystem.removeTree(runtime.stateDirectory + "/iofs")
        try FileSystem.makeDirectories(images.dataDirectory, mode: 0o700)
        let store = try Store(path: images.dataDirectory + "/fnrunner.db")
        let storeLock = try store.lockForServing()
        defer { storeLock.release() }
        let asyncConfig = try AsyncCallConsumer.Configuration.fromEnvironment(env)
        let imageStore = try images.open(logger)
        let puller = try images.puller(imageStore, logger)
        let poolSize = try fnEnv.int("FN_SANDBOX_POOL_SIZE", default: 4, minimum: 0)
        guard poolSize <= SandboxConfiguration.maximumPoolSize else {
            throw RunnerError(
                .invalidArgument, "FN_SANDBOX_POOL_SIZE must be at most \(SandboxConfiguration.maximumPoolSize), not \(poolSize)")
        }
        // Every setting is read before the sandbox makes cgroups: a bad value leaves nothing.
        let maxMemoryBytes = try Self.limit(fnEnv, "FN_MAX_TOTAL_MEMORY_BYTES")
        let maxCPUMillicores = try Self.limit(fnEnv, "FN_MAX_TOTAL_CPU_MCPUS")
        var apiConfig = FnAPI.Configuration()
        apiConfig.maxRequestBytes = try fnEnv.int("FN_MAX_REQUEST_SIZE", default: apiConfig.maxRequestBytes, minimum: 1)
        // Fn's name first; FN_PUBLIC_URL is this runner's older name for it. Unset: each request's Host.
        apiConfig.publicURL = fnEnv.string("FN_PUBLIC_LB_URL") ?? fnEnv.string("FN_PUBLIC_URL")
        apiConfig.clientIdleTimeoutMillis = try fnEnv.int(
            "FN_CLIENT_IDLE_TIMEOUT_MSECS", default: apiConfig.clientIdleTimeoutMillis, minimum: 0)
        apiConfig.functionNetworks = networkSettings.available
        let tracing = try ServeTracing.start(env, logger: logger)
        apiConfig.tracesRequests = tracing != nil
        let layout = try CgroupLayout.detect()
        // The node's size comes from the cgroup the runner was started in (a unit's MemoryMax, say),
        // read before a delegated runner moves itself into a leaf of it.
        let totals = try NodeResources.detect(layout: layout, maxMemoryBytes: maxMemoryBytes, maxCPUMillicores: maxCPUMillicores)
        let cgroupRoot = cgroupDelegated ? try CgroupDelegation.enter(layout: layout, rootName: runtime.cgroupRoot) : runtime.cgroupRoot
        let sandbox = try Sandbox(
            configuration: SandboxConfiguration(
                stateDirectory: runtime.stateDirectory, cgroupRoot: cgroupRoot, layout: layout, logger: logger, poolSize: poolSize,
                functionNetwork: networkSettings.usesBridge ? networkSettings.bridge : nil,
                poolNetwork: networkSettings.usesBridge ? .bridge : .none))
        let driver: NativeDriver
        do {
            driver = try NativeDriver(configuration: driverConfig, sandbox: sandbox, store: imageStore, puller: puller, logger: logger)
        } catch {
            await sandbox.shutdown()  // what a failed start made goes again
            throw error
        }
        logger.notice(
            "fnrunner serve starting",
            metadata: [
                "listen": "\(host):\(port)", "cgroups": "\(sandbox.driver.layout)", "cgroup_root": "\(cgroupRoot)", "memory_bytes": "\(totals.memoryBytes)",
                "cpu_millicores": "\(totals.cpuMillicores)", "store": "\(store.path)", "sandbox_pool": "\(poolSize)",
                "function_network": "\(networkSettings.defaultNetwork)", "tracing": "\(tracing == nil ? "off" : "otlp")",
                "call_records": "\(recordsCalls ? "all" : "detached calls only")",
            ])
        let tracker = ResourceTracker(totalMemoryBytes: totals.memoryBytes, totalCPUMillicores: totals.cpuMillicores)
        let agent = Agent(configuration: agentConfig, driver: driver, tracker: tracker, logger: logger, tracer: tracing?.tracer)
        let recorder = recordsCalls ? StoreRecorder(store: store, logger: logger) : nil
        if let recorder { agent.addListener(recorder) }
        let detachedCalls = AsyncCallConsumer(configuration: asyncConfig, agent: agent, queue: store, logger: logger)
        agent.addListener(detachedCalls)
        let api = FnAPI(
            configuration: apiConfig, store: store, agent: agent, recorder: recorder, detachedCalls: detachedCalls, logger: logger)
        // Fns that keep instances ahead of demand get them back (they start once the agent runs).
        do {
            try await api.prewarmAll()
        } catch {
            logger.warning("prewarm targets could not be read from the store", metadata: ["error": "\(error)"])
        }
        // A group stops its services last to first: the exporter goes last, with every span.
        var services: [any Service] = tracing.map { [$0.service] } ?? []
        services.append(AgentService(agent: agent, detachedCalls: detachedCalls))
        if let recorder { services.append(RecordWriter(recorder: recorder)) }
        services.append(CallPruner(configuration: retention, store: store, logger: logger))
        var grpcService: GRPCRunnerService?
        if let (gHost, gPort) = grpcAddress {
            let service = GRPCRunnerService(
                host: gHost, port: gPort, runner: PureRunner(agent: agent, maxRequestBytes: apiConfig.maxRequestBytes), tls: grpcTLS,
                tracing: tracing != nil)
            grpcService = service
            services.append(service)
            logger.notice(
                "Fn RunnerProtocol (gRPC) listening",
                metadata: ["grpc_listen": "\(gHost):\(gPort)", "tls": "\(grpcTLS == nil ? "off" : grpcTLS?.clientCA == nil ? "on" : "mutual")"])
        }
        let httpRunning = AsyncEvent()
        if let notifier = ServiceManagerNotifier(environment: env) {
            services.append(
                ServiceManagerService(
                    notifier: notifier,
                    ready: { [sandbox, grpcService, grpcAddress] in
                        if !httpOff { await httpRunning.wait() }
                        _ = await grpcService?.listeningPort
                        // The pool fills in the background; a node is ready for cold starts once it is full.
                        for _ in 0..<2000 where !sandbox.poolIsSettled && !Task.isCancelled {
                            try? await Task.sleep(for: .milliseconds(10))
                        }
                        return "serving" + (httpOff ? "" : " http \(host):\(port)") + (grpcAddress.map { " grpc \($0.0):\($0.1)" } ?? "")
                            + ", \(sandbox.pooledSandboxesReady) sandboxes ready"
                    }, logger: logger))
        }
        do {
            if httpOff {
                let group = ServiceGroup(
                    configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            } else {
                let app = Application(
                    router: api.router(), server: api.server,
                    configuration: .init(address: .hostname(host, port: port)), services: services,
                    onServerRunning: { _ in httpRunning.fire() }, logger: logger)
                try await app.runService()
            }
        } catch {
            await sandbox.shutdown()
            throw error
        }
        await sandbox.shutdown()
        logger.notice("fnrunner serve stopped")
    }

    static func address(_ listen: String?, fnPort: Int, option: String = "--listen") throws(RunnerError) -> (String, Int) {
        guard let listen else {
            guard (0...65535).contains(fnPort) else { throw RunnerError(.invalidArgument, "FN_PORT must be a port number, not \(fnPort)") }
            return ("127.0.0.1", fnPort)
        }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw RunnerError(.invalidArgument, "\(option) must be host:port, not \"\(listen)\"")
        }
        return (String(listen[..<colon]), port)
    }

    /// A FN_MAX_TOTAL_* clamp: 0 or absent means none.
    static func limit(_ env: FnEnvironment, _ name: String) throws(RunnerError) -> UInt64? {
        let v = try env.int(name, default: 0, minimum: 0)
        return v == 0 ? nil : UInt64(v)
    }
}
