import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// A syslog collector for one test on 127.0.0.1 (an ephemeral port, nothing sent anywhere
/// else): UDP takes datagrams, TCP takes connections; `text` is everything received so far.
public final class SyslogReceiver: @unchecked Sendable {
    public enum Transport: String { case udp, tcp }

    public let transport: Transport
    public let port: Int
    private let fd: Int32
    private var connections: [Int32] = []
    private var received: [UInt8] = []

    public var url: String { "\(transport.rawValue)://127.0.0.1:\(port)" }
    public var text: String { String(decoding: received, as: UTF8.self) }

    public init(_ transport: Transport) throws {
        self.transport = transport
        let type = transport == .udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue
        let fd = socket(AF_INET, Int32(type) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RunnerError.system("socket", errno: errno, "syslog receiver") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, transport == .udp || listen(fd, 16) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw RunnerError.system("bind", errno: e, "syslog receiver")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        self.fd = fd
    }

    deinit {
        for c in connections { Glibc.close(c) }
        Glibc.close(fd)
    }

    /// The MSG part of each received line whose APP-NAME is `tag`. Anything else on the
    /// machine may connect to a loopback port this receiver was given; a test that reads its
    /// own writer's lines only is not misled by them.
    public func messages(tag: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
            let fields = line.split(separator: " ", maxSplits: 7, omittingEmptySubsequences: false)
            return fields.count == 8 && fields[3] == tag ? String(fields[7]) : nil
        }
    }

    /// Reads what has arrived until `text` contains `marker`, for up to `seconds`.
    public func waitFor(_ marker: String, seconds: Double = 10) async -> Bool {
        let deadline = MonotonicClock.nowNanos() + UInt64(seconds * 1e9)
        while MonotonicClock.nowNanos() < deadline {
            drain()
            if text.contains(marker) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        drain()
        return text.contains(marker)
    }

    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        if transport == .tcp {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { break }
                _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                connections.append(c)
            }
        }
        for source in transport == .udp ? [fd] : connections {
            while true {
                let n = recv(source, &buffer, buffer.count, 0)
                if n <= 0 { break }
                received.append(contentsOf: buffer[0..<n])
            }
        }
    }
}
