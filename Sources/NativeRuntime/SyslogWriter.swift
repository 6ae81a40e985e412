import Runner
import Logging
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A container's output sent to its app's `syslog_url`, as Docker's syslog driver sends it
/// under Fn (`syslog-format rfc5424`, facility user, tag `app_id=…,fn_id=…` as APP-NAME and
/// MSGID): one RFC 5424 message per line, each ended by a newline, over UDP (a datagram each)
/// or TCP.
///
/// It never blocks the function or the shared output pump: the socket is non-blocking, a TCP
/// collector that falls behind gets what fits in a bounded backlog and the rest is dropped and
/// counted, and a broken TCP connection is made again (at most once a second) for later lines.
final class SyslogWriter: Sendable {
    enum Transport: String, Sendable { case udp, tcp }

    /// Where messages go: a transport and an address as the URL gave it.
    struct Destination: Sendable, Equatable {
        var transport: Transport
        var host: String
        var port: String
    }

    /// Syslog's facility "user" (1) and the severities Docker uses: info for stdout, err for
    /// stderr.
    enum Severity: Int { case err = 3, info = 6 }

    /// Docker splits longer lines into messages of this size.
    static let maxLineBytes = 16 << 10
    /// Bytes a TCP collector may fall behind by before lines are dropped.
    static let backlogLimit = 1 << 20

    private struct State {
        var fd: Int32
        var partial: [UInt8] = []
        /// Whole messages not yet sent (TCP); the first may be part-sent.
        var pending: [[UInt8]] = []
        var pendingBytes = 0
        var sentOfFirst = 0
        var dropped = 0
        var lastConnect: UInt64 = 0
        var closed = false
    }

    let destination: Destination
    private let address: SocketAddress
    private let prefix: [UInt8]
    private let header: String
    private let logger: Logger
    private let state: Mutex<State>

    private init(destination: Destination, address: SocketAddress, fd: Int32, tag: String, severity: Severity, logger: Logger) {
        self.destination = destination
        self.address = address
        self.logger = logger
        // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD: the timestamp goes in per line.
        prefix = Array("<\(8 + severity.rawValue)>1 ".utf8)
        header = " \(Self.hostname) \(tag) \(getpid()) \(tag) - "
        state = Mutex(State(fd: fd, lastConnect: MonotonicClock.nowNanos()))
    }

    /// Reads Fn's `syslog_url`; the transports fnrunner delivers to are udp and tcp (port 514
    /// when none is given).
    static func parse(_ url: String) throws(RunnerError) -> Destination {
        let text = url.trimmingSpaces()
        let parts = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw RunnerError(.invalidArgument, "syslog url \"\(text)\" has no scheme", step: "connect syslog")
        }
        let scheme = parts[0].lowercased()
        guard let transport = Transport(rawValue: scheme) else {
            throw RunnerError(
                .unsupported, "fnrunner delivers syslog over udp and tcp, not \(scheme) (syslog url \"\(text)\")", step: "connect syslog")
        }
        var rest = parts[1]
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var host: Substring
        var port: Substring = "514"
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { port = after.dropFirst() }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            port = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty, let n = Int(port), (1...65535).contains(n) else {
            throw RunnerError(.invalidArgument, "syslog url \"\(text)\" needs a host and a port from 1 to 65535", step: "connect syslog")
        }
        return Destination(transport: transport, host: String(host), port: String(port))
    }

    /// Resolves and connects (on a thread of its own: name lookups and TCP handshakes block),
    /// within `timeout`. A destination that cannot be reached now is an error: Fn does not
    /// start a container whose logs have nowhere to go.
    static func connect(url: String, tag: String, severity: Severity, logger: Logger, timeout: Duration = .seconds(5))
        async throws(RunnerError) -> SyslogWriter
    {
        let destination = try parse(url)
        return try await BlockingThread.run { () throws(RunnerError) -> SyslogWriter in
            let address = try SocketAddress.resolve(destination)
            let fd = try address.connect(waitingUpTo: timeout)
            return SyslogWriter(destination: destination, address: address, fd: fd, tag: tag, severity: severity, logger: logger)
        }
    }

    /// Sends each whole line of `chunk`; an unfinished line waits for the rest (or `finish`).
    func write(_ chunk: [UInt8]) {
        state.withLock { s in
            guard !s.closed else { return }
            var start = 0
            for i in chunk.indices where chunk[i] == 0x0A {
                s.partial.append(contentsOf: chunk[start..<i])
                emit(&s)
                start = i + 1
            }
            s.partial.append(contentsOf: chunk[start...])
            if s.partial.count >= Self.maxLineBytes {
                let whole = s.partial.count / Self.maxLineBytes * Self.maxLineBytes
                let rest = Array(s.partial[whole...])
                s.partial.removeSubrange(whole...)
                emit(&s)
                s.partial = rest
            }
            flush(&s)
        }
    }

    /// Sends what is left (a last line without its newline, a TCP backlog, as far as the
    /// socket takes it now) and closes; later writes are ignored.
    func close() {
        let dropped = state.withLock { s -> Int in
            guard !s.closed else { return 0 }
            if !s.partial.isEmpty { emit(&s) }
            flush(&s)
            s.dropped += s.pending.count
            s.closed = true
            if s.fd >= 0 { Glibc.close(s.fd) }
            s.fd = -1
            return s.dropped
        }
        if dropped > 0 {
            logger.warning(
                "syslog lines dropped", metadata: ["syslog": "\(destination.transport)://\(destination.host):\(destination.port)", "lines": "\(dropped)"])
        }
    }

    /// Sends `s.partial` as one message, or several of at most 16 KiB, and empties it.
    private func emit(_ s: inout State) {
        var start = 0
        repeat {
            let end = min(s.partial.count, start + Self.maxLineBytes)
            send(s.partial[start..<end], &s)
            start = end
        } while start < s.partial.count
        s.partial.removeAll(keepingCapacity: true)
    }

    private func send(_ line: ArraySlice<UInt8>, _ s: inout State) {
        var message = prefix
        message.append(contentsOf: WallClock.rfc3339(WallClock.nowNanos(), millis: false).utf8)
        message.append(contentsOf: header.utf8)
        message.append(contentsOf: line)
        message.append(0x0A)
        switch destination.transport {
        case .udp:
            // One datagram per line; a collector that is down loses them, as UDP syslog does.
            _ = message.withUnsafeBytes { Glibc.send(s.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        case .tcp:
            if s.pendingBytes + message.count > Self.backlogLimit {
                s.dropped += 1
                return
            }
            s.pending.append(message)
            s.pendingBytes += message.count
        }
    }

    private func flush(_ s: inout State) {
        guard destination.transport == .tcp else { return }
        while let first = s.pending.first {
            if s.fd < 0 && !reconnect(&s) { return }
            let n = first.withUnsafeBytes { b in
                Glibc.send(s.fd, b.baseAddress! + s.sentOfFirst, b.count - s.sentOfFirst, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if n > 0 {
                s.sentOfFirst += n
                if s.sentOfFirst == first.count {
                    s.pending.removeFirst()
                    s.pendingBytes -= first.count
                    s.sentOfFirst = 0
                }
                continue
            }
            let e = errno
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) { return }
            // The connection broke: a part-sent message is lost (its end would be garbage on a
            // new connection); the rest go out on the next one.
            Glibc.close(s.fd)
            s.fd = -1
            if s.sentOfFirst > 0 {
                s.pending.removeFirst()
                s.pendingBytes -= first.count
                s.sentOfFirst = 0
                s.dropped += 1
            }
            logger.warning("syslog connection lost", metadata: ["syslog": "\(destination.host):\(destination.port)", "errno": "\(n < 0 ? e : 0)"])
        }
    }

    /// A new non-blocking connection, at most once a second; its handshake completes while
    /// sends wait (EAGAIN).
    private func reconnect(_ s: inout State) -> Bool {
        let now = MonotonicClock.nowNanos()
        guard now &- s.lastConnect >= 1_000_000_000 else { return false }
        s.lastConnect = now
        guard let fd = try? address.startConnect() else { return false }
        s.fd = fd
        return true
    }

    /// RFC 5424's NILVALUE when the machine has no name.
    static let hostname = HostName.current ?? "-"
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" || s.first == "\n" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" || s.last == "\n" { s = s.dropLast() }
        return String(s)
    }
}
