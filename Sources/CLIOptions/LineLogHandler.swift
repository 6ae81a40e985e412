import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How one log event becomes one line: the fields are the logger's metadata with the event's
/// own keys (and its error, as `error`) over them.
public protocol LogLineFormat: Sendable {
    static func line(label: String, event: LogEvent, fields: Logger.Metadata) -> String
}

/// A log handler that writes each event as one line to a descriptor, in `Format`. Its metadata
/// is rendered only for a line it writes (swift-log's `StreamLogHandler` renders it again each
/// time a key is set, and Hummingbird sets one on every request's logger). A line is written
/// with a single write(2) where the descriptor takes it whole (a pipe takes up to PIPE_BUF
/// bytes at once), so the lines of concurrent loggers do not mix.
public struct LineLogHandler<Format: LogLineFormat>: LogHandler {
    public var logLevel: Logger.Level = .notice
    public var metadata: Logger.Metadata = [:]
    let label: String
    let fd: Int32

    public init(label: String, fd: Int32 = 2) {
        self.label = label
        self.fd = fd
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        if let error = event.error { fields["error"] = "\(error)" }
        var line = Format.line(label: label, event: event, fields: fields)
        line.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
