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
public enum Shell {
    public static func run(_ command: String) throws {
        let status = system(command)
        if status != 0 { throw ShellError(command: command, status: status) }
    }

    /// Runs a command and returns its stdout.
    public static func output(_ command: String) throws -> String {
        guard let f = popen(command, "r") else { throw ShellError(command: command, status: -1) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        let status = pclose(f)
        if status != 0 { throw ShellError(command: command, status: status) }
        return String(decoding: out, as: UTF8.self)
    }
}
