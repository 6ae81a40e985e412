import ArgumentParser
import CLIOptions
import CgroupDriver
import FoundationEssentials
import Hummingbird
import Logging
import OCIImage
import Runner
import RunnerAPI
import RunnerOS
import RunnerStore
import Sandbox

/// `fnrunner serve`: one runner node speaking Fn's API, on its embedded store.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve Fn's v2 API, invoke and HTTP triggers from an embedded store.")

    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var images: StoreOptions

    @Option(help: "host:port to listen on (FN_PORT sets the port when this is not given).")
    var listen: String?

    mutating func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let fnEnv = FnEnvironment(env)
        let logger = runtime.makeLogger(label: "fnrunner.serve")
        let (host, port) = try Self.address(listen, fnPort: try fnEnv.int("FN_PORT", default: 8080, minimum: 0))
        let agentConfig = try AgentConfiguration.fromEnvironment(env)
        let retention = try CallPruner.Configuration.fromEnvironment(env)
        let driverConfig = try NativeDriver.Configuration.fromEnvironment(env, defaultIOFSRoot: runtime.stateDirectory + "/iofs")
        try FileSystem.makeDirectories(images.dataDirectory, mode: 0o700)
        let store = try Store(path: images.dataDirectory + "/fnrunner.db")
        let storeLock = try store.lockForServing()
        defer { storeLock.release() }
        let asyncConfig = try AsyncCallConsumer.Configuration.fromEnvironment(env)
        let imageStore = try images.open(logger)
        let puller = try images.puller(imageStore, logger)
        let sandbox = try Sandbox(
            configuration: SandboxConfiguration(stateDirectory: runtime.stateDirectory, cgroupRoot: runtime.cgroupRoot, logger: logger))
        let totals = try NodeResources.detect(
            layout: sandbox.driver.layout, maxMemoryBytes: try Self.limit(fnEnv, "FN_MAX_TOTAL_MEMORY_BYTES"),
            maxCPUMillicores: try Self.limit(fnEnv, "FN_MAX_TOTAL_CPU_MCPUS"))
        logger.notice(
            "fnrunner serve starting",
            metadata: [
                "listen": "\(host):\(port)", "cgroups": "\(sandbox.driver.layout)", "memory_bytes": "\(totals.memoryBytes)",
                "cpu_millicores": "\(totals.cpuMillicores)", "store": "\(store.path)",
            ])
        let tracker = ResourceTracker(totalMemoryBytes: totals.memoryBytes, totalCPUMillicores: totals.cpuMillicores)
        let driver = try NativeDriver(configuration: driverConfig, sandbox: sandbox, store: imageStore, puller: puller, logger: logger)
        let agent = Agent(configuration: agentConfig, driver: driver, tracker: tracker, logger: logger)
        let recorder = StoreRecorder(store: store, logger: logger)
        agent.addListener(recorder)
        let detachedCalls = AsyncCallConsumer(configuration: asyncConfig, agent: agent, queue: store, logger: logger)
        agent.addListener(detachedCalls)
        var apiConfig = FnAPI.Configuration()
        apiConfig.maxRequestBytes = try fnEnv.int("FN_MAX_REQUEST_SIZE", default: apiConfig.maxRequestBytes, minimum: 1)
        apiConfig.publicURL = fnEnv.string("FN_PUBLIC_URL") ?? "http://\(host):\(port)"
        let api = FnAPI(
            configuration: apiConfig, store: store, agent: agent, recorder: recorder, detachedCalls: detachedCalls, logger: logger)
        let app = Application(
            router: api.router(), server: FnAPI.server, configuration: .init(address: .hostname(host, port: port), serverName: "fnrunner"),
            services: [
                AgentService(agent: agent, detachedCalls: detachedCalls), RecordWriter(recorder: recorder),
                CallPruner(configuration: retention, store: store, logger: logger),
            ], logger: logger)
        do {
            try await app.runService()
        } catch {
            await sandbox.shutdown()
            throw error
        }
        await sandbox.shutdown()
        logger.notice("fnrunner serve stopped")
    }

    static func address(_ listen: String?, fnPort: Int) throws(RunnerError) -> (String, Int) {
        guard let listen else {
            guard (0...65535).contains(fnPort) else { throw RunnerError(.invalidArgument, "FN_PORT must be a port number, not \(fnPort)") }
            return ("127.0.0.1", fnPort)
        }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw RunnerError(.invalidArgument, "--listen must be host:port, not \"\(listen)\"")
        }
        return (String(listen[..<colon]), port)
    }

    /// A FN_MAX_TOTAL_* clamp: 0 or absent means none.
    static func limit(_ env: FnEnvironment, _ name: String) throws(RunnerError) -> UInt64? {
        let v = try env.int(name, default: 0, minimum: 0)
        return v == 0 ? nil : UInt64(v)
    }
}
