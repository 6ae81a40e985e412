import Logging
import RunnerOS

/// Log lines for people (`--log-format text`, the default).
public typealias TextLogHandler = LineLogHandler<TextLogFormat>

/// Time (RFC 3339, UTC, milliseconds), level, logger, the metadata as sorted `key=value` pairs,
/// `[source]`, the message.
public enum TextLogFormat: LogLineFormat {
    public static func line(label: String, event: LogEvent, fields: Logger.Metadata) -> String {
        var out = WallClock.rfc3339(WallClock.nowNanos(), millis: true) + " \(event.level) " + label + ":"
        for key in fields.keys.sorted() { out += " \(key)=\(fields[key]!)" }
        return out + " [\(event.source)] \(event.message)\n"
    }
}
