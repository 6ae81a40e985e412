import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A minimal keep-alive HTTP/1.1 client over a unix socket, for measuring the hot path of an
/// http-stream function in `fnrunner bench` (the agent's own client comes with the agent).
final class UnixHTTPProbe {
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 65536)

    init(path: String) throws(RunnerError) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .system("socket", errno: errno, "cannot create a unix socket") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw RunnerError(.invalidArgument, "socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw .system("connect", errno: e, "cannot connect to \(path)")
        }
    }

    deinit { close(fd) }

    /// The index of "\r\n\r\n" in the first `count` bytes.
    static func endOfHeaders(_ b: [UInt8], _ count: Int) -> Int? {
        guard count >= 4 else { return nil }
        for i in 0...(count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    /// POSTs `body` to /call and returns the status and body of the response.
    func call(_ body: String) throws(RunnerError) -> (status: Int, body: String) {
        var request = "POST /call HTTP/1.1\r\nHost: localhost\r\nFn-Call-Id: bench\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let sent = request.withUTF8 { write(fd, $0.baseAddress, $0.count) }
        if sent < 0 { throw .system("write", errno: errno, "cannot send the request") }
        var have = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + have, $0.count - have) }
            if n <= 0 { throw .system("read", errno: n < 0 ? errno : ECONNRESET, "the function closed the connection") }
            have += n
            guard let headerEnd = Self.endOfHeaders(buffer, have) else { continue }
            let head = String(decoding: buffer[0..<headerEnd], as: UTF8.self)
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmed) } ?? 0
            let bodyStart = headerEnd + 4
            if have >= bodyStart + length {
                let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                return (status, String(decoding: buffer[bodyStart..<(bodyStart + length)], as: UTF8.self))
            }
        }
    }
}
