import ArgumentParser
import FoundationEssentials
import Logging

@main
enum Entry {
    /// Logs go to stderr (stdout is the command's output), at notice unless FNRUNNER_LOG_LEVEL says otherwise.
    static func main() async {
        let level = ProcessInfo.processInfo.environment["FNRUNNER_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        await FnRunnerCommand.main()
    }
}

struct FnRunnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fnrunner",
        abstract: "A container-runtime-native runner for Fn functions.",
        subcommands: [RunCommand.self, PullCommand.self, ImportCommand.self, ImagesCommand.self, RemoveImageCommand.self, GarbageCollectCommand.self, UnpackCommand.self, BenchCommand.self, ServeCommand.self, PsCommand.self]
    )
}

/// Options every command that touches containers shares.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .customLong("state-dir"), help: "Runtime state directory (instance locks, mount target).")
    var stateDirectory = "/run/fnrunner"

    @Option(name: .customLong("cgroup-root"), help: "Relative cgroup path under which the runner makes its cgroups, in every hierarchy.")
    var cgroupRoot = "fnrunner"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "notice"

    func makeLogger(label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        return logger
    }
}
