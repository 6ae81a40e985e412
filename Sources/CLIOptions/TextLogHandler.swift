import Logging
import RunnerOS

/// Log lines for people (`--log-format text`, the default): time, level, logger, the metadata as
/// sorted `key=value` pairs, `[source]`, the message. Unlike swift-log's `StreamLogHandler`,
/// which renders its metadata again each time a key is set, this renders it only for a line it
/// writes: Hummingbird sets a request id on every request's logger, and serve's handlers log
/// far less often than they set keys. Lines are written with one write(2) each.
public struct TextLogHandler: LogHandler {
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
        var out = WallClock.rfc3339(WallClock.nowNanos(), millis: true) + " \(event.level) " + label + ":"
        for key in fields.keys.sorted() { out += " \(key)=\(fields[key]!)" }
        out += " [\(event.source)] \(event.message)\n"
        LogLine.write(out, to: fd)
    }
}
