import ArgumentParser
import RunnerOS
import CLIOptions
import FoundationEssentials
import Logging

@main
enum Entry {
    static func main() async {
        CLILogging.bootstrap()
        await FnRunnerCommand.main()
    }
}

struct FnRunnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fnrunner",
        abstract: "A container-runtime-native runner for Fn functions.",
        version: FnrunnerVersion.current,
        subcommands: [RunCommand.self, PullCommand.self, ImportCommand.self, ImagesCommand.self, RemoveImageCommand.self, GarbageCollectCommand.self, UnpackCommand.self, BenchCommand.self, ServeLauncher.self, PsCommand.self]
    )
}

