import RunnerOS
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One loopback TCP connection driven by hand: write a request, read what has arrived so far,
/// hang up in the middle. For what HTTPTestClient cannot show: an answer arriving piece by
/// piece, and a client that goes away.
final class RawHTTPConnection: @unchecked Sendable {
    /// -1 once `reset()` closed it.
    private var fd: Int32
    private(set) var received: [UInt8] = []

    init(port: Int) throws(RunnerError) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .system("socket", errno: errno, "cannot create a socket") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw .system("connect", errno: e, "cannot connect to 127.0.0.1:\(port)")
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Sends a request with a body (and Content-Length).
    func send(_ method: String, _ path: String, body: String, headers: [(String, String)] = []) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n"
        for (n, v) in headers { head += "\(n): \(v)\r\n" }
        let bytes = Array((head + "\r\n" + body).utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Sends bytes as they are (a partial head, say).
    func sendRaw(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Writes `text` again and again, without blocking, until `limit` bytes are out or the
    /// socket has taken nothing more for `stallMillis`; how many bytes it took.
    func sendUntilFull(_ text: String, limit: Int, stallMillis: Int32 = 1000) async -> Int {
        let fd = self.fd
        let bytes = Array(text.utf8)
        return (try? await TestThread.run { () -> Int in
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            defer { _ = fcntl(fd, F_SETFL, flags) }
            var sent = 0
            while sent < limit {
                let offset = sent % bytes.count
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n > 0 {
                    sent += n
                    continue
                }
                if n < 0 && errno != EAGAIN { break }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, stallMillis) <= 0 { break }
            }
            return sent
        }) ?? 0
    }

    /// Waits up to `seconds` for the server to close the connection (reading what comes).
    func waitForClose(seconds: Int) async -> Bool {
        let fd = self.fd
        return (try? await TestThread.run { () -> Bool in
            var chunk = [UInt8](repeating: 0, count: 4096)
            let deadline = MonotonicClock.nowNanos() + UInt64(seconds) * 1_000_000_000
            while MonotonicClock.nowNanos() < deadline {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 100) <= 0 { continue }
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return true }
            }
            return false
        }) ?? false
    }

    /// Reads until what arrived contains `marker`, for up to `seconds`; true if it did.
    func read(until marker: String, seconds: Int = 30) async -> Bool {
        let fd = self.fd
        let want = Array(marker.utf8)
        let already = received
        let (data, found) = (try? await TestThread.run { () -> ([UInt8], Bool) in
            var data = already
            var chunk = [UInt8](repeating: 0, count: 65536)
            let deadline = MonotonicClock.nowNanos() + UInt64(seconds) * 1_000_000_000
            while data.firstOffset(of: want) == nil {
                let now = MonotonicClock.nowNanos()
                if now >= deadline { return (data, false) }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, Int32((deadline - now) / 1_000_000) + 1) <= 0 { continue }
                let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return (data, false) }
                data += chunk[0..<n]
            }
            return (data, true)
        }) ?? (already, false)
        received = data
        return found
    }

    var text: String { String(decoding: received, as: UTF8.self) }

    /// Closes the sending side only (FIN), as a client that is done asking does.
    func closeWriting() { shutdown(fd, Int32(SHUT_WR)) }

    /// Hangs up (both directions), as a client that gave up does.
    func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Closes with a reset (RST, no FIN), as a client that crashed or a proxy that dropped the
    /// connection does: the server reads an error, not the end of the input.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        Glibc.close(fd)
        fd = -1
    }
}
