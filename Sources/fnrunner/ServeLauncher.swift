import ArgumentParser
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `fnrunner serve …`: runs `fnrunner-serve …` from the same directory, in this process (exec),
/// so that `fnrunner` itself stays small and quick to start.
struct ServeLauncher: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve Fn's v2 API, invoke and HTTP triggers from an embedded store (runs fnrunner-serve).")

    @Argument(parsing: .captureForPassthrough, help: "fnrunner-serve's options; see fnrunner serve --help.")
    var arguments: [String] = []

    func run() throws {
        let server = Self.serverPath()
        let argv = [server] + arguments
        var cArgs = argv.map { strdup($0) } + [nil]
        execv(server, &cArgs)
        let e = errno
        for a in cArgs { free(a) }
        throw RunnerError(.notFound, "cannot run \(server) (fnrunner serve needs it next to fnrunner)", step: "exec", errno: e)
    }

    /// fnrunner-serve in the directory of this executable.
    static func serverPath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let me = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        let dir = me.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return (dir.isEmpty ? "." : dir) + "/fnrunner-serve"
    }
}
