import CLIOptions
import FoundationEssentials
import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// The server, in a binary of its own: its HTTP and SQLite libraries (and full Foundation) would
/// add ~3 ms to every start of `fnrunner run` (a larger static binary to map and relocate), so
/// `fnrunner serve` execs this program instead of carrying them.
@main
enum ServeMain {
    static func main() async {
        // A --config file is applied first: it may choose the log format, and it only adds what
        // neither the command line nor the environment gives.
        let arguments: [String]
        do {
            arguments = try ServeConfigFile.apply(
                arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment
            ) { name, value in setenv(name, value, 1) }
        } catch {
            var line = "Error: \(error)\n"
            line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            exit(64)
        }
        CLILogging.bootstrap(arguments: arguments, environment: ProcessInfo.processInfo.environment)
        await ServeCommand.main(arguments)
    }
}
