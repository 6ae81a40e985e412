import ArgumentParser
import FoundationEssentials
import Logging
import OCIImage
import RunnerOS

/// Options every command that touches containers shares.
public struct RuntimeOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("state-dir"), help: "Runtime state directory (instance locks, mount target).")
    public var stateDirectory = "/run/fnrunner"

    @Option(name: .customLong("cgroup-root"), help: "Relative cgroup path under which the runner makes its cgroups, in every hierarchy.")
    public var cgroupRoot = "fnrunner"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    public var logLevel: String = "notice"

    @Option(name: .customLong("log-format"), help: "text, or json: one object per line (FNRUNNER_LOG_FORMAT).")
    public var logFormat: String = "text"

    public func validate() throws {
        guard LogFormat(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format must be text or json, not \"\(logFormat)\"")
        }
        if let env = ProcessInfo.processInfo.environment["FNRUNNER_LOG_FORMAT"], !env.isEmpty, LogFormat(rawValue: env) == nil {
            throw ValidationError("FNRUNNER_LOG_FORMAT must be text or json, not \"\(env)\"")
        }
    }

    public func makeLogger(label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        return logger
    }
}

/// Options of commands that use the image store.
public struct StoreOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("data-dir"), help: "Image store: blobs, unpacked layers, the catalog.")
    public var dataDirectory = "/var/lib/fnrunner"

    @Option(name: .customLong("insecure-registry"), help: "host[:port] that may be pulled from over plain HTTP (repeatable; localhost always may).")
    public var insecureRegistries: [String] = []

    @Option(name: .customLong("certs-dir"), help: "Per-registry CA files: DIR/<host[:port]>/ca.crt.")
    public var certsDirectory = "/etc/docker/certs.d"

    /// The store, stacking bytecode layers unless FN_PYTHON_BYTECODE turns them off.
    public func open(_ logger: Logger) throws(RunnerError) -> ImageStore {
        try ImageStore(dataDirectory: dataDirectory, stacksBytecode: try Self.pythonBytecode(), logger: logger)
    }

    /// FN_PYTHON_BYTECODE (default true): whether Python images get a layer of compiled
    /// bytecode when pulled or imported, and containers stack it.
    public static func pythonBytecode(_ env: [String: String] = ProcessInfo.processInfo.environment) throws(RunnerError) -> Bool {
        try FnEnvironment(env).bool("FN_PYTHON_BYTECODE", default: true)
    }

    public func puller(_ store: ImageStore, _ logger: Logger) throws(RunnerError) -> ImagePuller {
        let credentials = try RegistryCredentials.load(environment: ProcessInfo.processInfo.environment)
        let options = RegistryOptions(
            insecureRegistries: Set(insecureRegistries), certsDirectory: certsDirectory, credentials: credentials)
        return ImagePuller(store: store, options: options, logger: logger)
    }

}

/// Logging for both executables: to stderr (stdout is a command's output), at notice unless
/// FNRUNNER_LOG_LEVEL says otherwise, as text or JSON lines (`--log-format`, FNRUNNER_LOG_FORMAT).
public enum CLILogging {
    public static func bootstrap(
        arguments: [String] = CommandLine.arguments, environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        let level = environment["FNRUNNER_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
        switch LogFormat.chosen(arguments: arguments, environment: environment) {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = TextLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
