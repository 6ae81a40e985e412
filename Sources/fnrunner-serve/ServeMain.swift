import CLIOptions

/// The server, in a binary of its own: its HTTP and SQLite libraries (and full Foundation) would
/// add ~3 ms to every start of `fnrunner run` (a larger static binary to map and relocate), so
/// `fnrunner serve` execs this program instead of carrying them.
@main
enum ServeMain {
    static func main() async {
        CLILogging.bootstrap()
        await ServeCommand.main()
    }
}
