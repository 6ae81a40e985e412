import Runner
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A resolved UDP or TCP peer (IPv4 or IPv6), kept so that a broken connection can be made
/// again without another name lookup.
struct SocketAddress: Sendable {
    let family: Int32
    let type: Int32
    let bytes: [UInt8]
    let shown: String

    /// The first address `getaddrinfo` gives for the destination's host and port.
    static func resolve(_ d: SyslogWriter.Destination) throws(RunnerError) -> SocketAddress {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(d.transport == .udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(d.host, d.port, &hints, &list)
        guard rc == 0, let first = list else {
            let reason = rc == 0 ? "no address" : String(cString: gai_strerror(rc))
            throw RunnerError(.unavailable, "cannot resolve \(d.host): \(reason)", step: "resolve syslog host")
        }
        defer { freeaddrinfo(list) }
        let bytes = Array(UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
        return SocketAddress(family: first.pointee.ai_family, type: first.pointee.ai_socktype, bytes: bytes, shown: "\(d.host):\(d.port)")
    }

    /// A non-blocking socket whose connect has started (done at once for UDP).
    func startConnect() throws(RunnerError) -> Int32 {
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .system("socket", errno: errno, "cannot make a socket for \(shown)") }
        let rc = bytes.withUnsafeBytes { b in
            Glibc.connect(fd, b.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(b.count))
        }
        if rc < 0 && errno != EINPROGRESS {
            let e = errno
            Glibc.close(fd)
            throw .system("connect", errno: e, "cannot connect to \(shown)")
        }
        return fd
    }

    /// A connected non-blocking socket, or an error if the peer refuses or does not answer
    /// within `timeout`.
    func connect(waitingUpTo timeout: Duration) throws(RunnerError) -> Int32 {
        let fd = try startConnect()
        guard type == Int32(SOCK_STREAM.rawValue) else { return fd }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let millis = Int32(clamping: timeout.nanoseconds / 1_000_000)
        var ready: Int32
        repeat { ready = poll(&p, 1, millis) } while ready < 0 && errno == EINTR
        var soError: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if ready == 1 { getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length) }
        guard ready == 1, soError == 0 else {
            Glibc.close(fd)
            if ready == 0 { throw RunnerError(.unavailable, "no answer from \(shown) within \(timeout)", step: "connect") }
            throw .system("connect", errno: soError == 0 ? ETIMEDOUT : soError, "cannot connect to \(shown)")
        }
        return fd
    }
}
