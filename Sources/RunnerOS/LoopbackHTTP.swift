#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A minimal HTTP/1.1 client for a server on loopback (`fnrunner ps` asking `fnrunner serve`,
/// and the tests): one request per connection, the whole answer read until the server closes.
/// Blocking; callers run it on a worker thread.
public enum LoopbackHTTP {
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public static func exchange(port: Int, _ method: String, _ path: String, body: [UInt8], headers: [(String, String)]) throws(RunnerError) -> Answer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .system("socket", errno: errno, "cannot create a socket") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw RunnerError(.unavailable, "cannot connect to 127.0.0.1:\(port)", step: "connect", errno: errno) }
        // A Host among `headers` replaces the default one.
        let host = headers.contains { $0.0.lowercased() == "host" } ? "" : "Host: 127.0.0.1:\(port)\r\n"
        var head = "\(method) \(path) HTTP/1.1\r\n\(host)Connection: close\r\nContent-Length: \(body.count)\r\n"
        for (n, v) in headers { head += "\(n): \(v)\r\n" }
        let request = Array((head + "\r\n").utf8) + body
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { write(fd, $0.baseAddress! + sent, $0.count - sent) }
            if n <= 0 { break }  // the server may answer (413) and close before reading everything
            sent += n
        }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            data += chunk[0..<n]
        }
        guard let end = data.firstOffset(of: Array("\r\n\r\n".utf8)) else {
            throw RunnerError(.unavailable, "127.0.0.1:\(port) sent no HTTP answer", step: "read response")
        }
        let lines = String(decoding: data[0..<end], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw RunnerError(.unavailable, "127.0.0.1:\(port) sent an invalid status line", step: "read response")
        }
        var answerHeaders: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            answerHeaders.append((String(line[..<colon]), line[line.index(after: colon)...].trimmed))
        }
        var rest = Array(data[(end + 4)...])
        if answerHeaders.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
            var decoded: [UInt8] = []
            while let lineEnd = rest.firstOffset(of: [13, 10]), let size = Int(String(decoding: rest[0..<lineEnd], as: UTF8.self), radix: 16), size > 0,
                rest.count >= lineEnd + 2 + size + 2
            {
                decoded += rest[(lineEnd + 2)..<(lineEnd + 2 + size)]
                rest = Array(rest[(lineEnd + 2 + size + 2)...])
            }
            rest = decoded
        }
        return Answer(status: status, headers: answerHeaders, body: rest)
    }
}
