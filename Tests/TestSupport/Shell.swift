#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public struct ShellError: Error, CustomStringConvertible {
    public let command: String
    public let status: Int32
    public var description: String { "`\(command)` failed with status \(status)" }
}

/// Runs a shell command for test set-up (fixtures, inspection); output goes to the test log.
///
/// From async code the async forms run: they wait for the command without holding a thread, and
/// its output reaches the test log once it has ended (stdout and stderr for `run`, stderr on
/// failure for `output`).
/// The blocking forms are for synchronous helpers only: on Swift's cooperative pool (two
/// threads here) two tests waiting for commands stall every other test in the process.
public enum Shell {
    @available(*, noasync, message: "blocks a cooperative thread: call the async form with await")
    public static func run(_ command: String) throws { try runBlocking(command) }

    /// For a `defer` in async code, where `await` cannot go: blocks its thread for the command.
    public static func runBlocking(_ command: String) throws {
        let status = shellStatus(system(command))
        if status != 0 { throw ShellError(command: command, status: status) }
    }

    /// Runs a command and returns its stdout.
    @available(*, noasync, message: "blocks a cooperative thread: call the async form with await")
    public static func output(_ command: String) throws -> String {
        guard let f = popen(command, "r") else { throw ShellError(command: command, status: -1) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        let status = shellStatus(pclose(f))
        if status != 0 { throw ShellError(command: command, status: status) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Runs a command, waiting for it without holding a thread; its output goes to the test log.
    public static func run(_ command: String) async throws {
        let p = try Subprocess(["/bin/sh", "-c", command])
        let status = await p.exit()
        let output = p.stdout + p.stderr
        toTestLog(output)
        if status != 0 { throw ShellError(command: command, status: status) }
    }

    /// Runs a command and returns its stdout, waiting for it without holding a thread.
    public static func output(_ command: String) async throws -> String {
        let p = try Subprocess(["/bin/sh", "-c", command])
        let status = await p.exit()
        if status != 0 {
            toTestLog(p.stderr)
            throw ShellError(command: command, status: status)
        }
        return p.stdout
    }

    /// Shell-style, as the async forms report it: the exit code, or 128 + the signal (-1: the
    /// command could not be run or waited for).
    private static func shellStatus(_ raw: Int32) -> Int32 {
        raw == -1 ? -1 : ((raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f))
    }

    private static func toTestLog(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }
}
