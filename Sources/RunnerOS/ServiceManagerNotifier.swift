#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram per state
/// change to the unix socket in NOTIFY_SOCKET ("@name" is an abstract one). A unit of
/// `Type=notify` counts the service as started only on READY=1, so clients are not sent to a
/// node whose listeners are not open yet; STOPPING=1 says a drain began; WATCHDOG=1, sent at
/// half of WATCHDOG_USEC, lets systemd restart a node whose event loops hang.
public struct ServiceManagerNotifier: Sendable {
    public let socketPath: String
    /// How often to ping the watchdog (half its timeout), when the unit set one for this process.
    public let watchdogInterval: Duration?

    /// Nil without NOTIFY_SOCKET (not started by a service manager that listens).
    public init?(environment: [String: String], pid: Int32 = getpid()) {
        guard let socket = environment["NOTIFY_SOCKET"], socket.hasPrefix("/") || socket.hasPrefix("@") else { return nil }
        socketPath = socket
        // WATCHDOG_PID names the process meant when it is set (a wrapper may have exec'd us).
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == pid } ?? true
        if forUs, let text = environment["WATCHDOG_USEC"], let usec = Int64(text), usec > 0 {
            watchdogInterval = .microseconds(usec / 2)
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends `message` (lines of KEY=VALUE). Errors are returned, never thrown: a service
    /// manager that went away must not stop the node.
    @discardableResult
    public func send(_ message: String) -> RunnerError? {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { return .system("socket", errno: errno, "cannot make a socket for NOTIFY_SOCKET") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else {
            return RunnerError(.invalidArgument, "NOTIFY_SOCKET \(socketPath) is longer than a unix socket path may be", step: "sd_notify")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        var bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                sendto(fd, &bytes, bytes.count, Int32(MSG_NOSIGNAL), sa, length)
            }
        }
        if sent < 0 { return .system("sendto", errno: errno, "cannot notify \(socketPath)") }
        return nil
    }
}
