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
        subcommands: [RunCommand.self, PullCommand.self, ImportCommand.self, ImagesCommand.self, RemoveImageCommand.self, GarbageCollectCommand.self, UnpackCommand.self, BenchCommand.self, ServeLauncher.self, PsCommand.self]
    )
}

