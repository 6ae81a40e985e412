import Logging
import RunnerOS

/// How the node's log lines look on stderr: `text` for people, `json` (one object per line) for
/// log collectors (journald's JSON export, Loki, Elasticsearch) that search by field.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json

    /// `--log-format X` or `--log-format=X` among `arguments` (logging starts before the command
    /// line is parsed), else FNRUNNER_LOG_FORMAT, else text. A value that is neither is left to
    /// the option's validation, which names it.
    public static func chosen(arguments: [String], environment: [String: String]) -> LogFormat {
        var value = environment["FNRUNNER_LOG_FORMAT"]
        for (i, arg) in arguments.enumerated() {
            if arg == "--log-format", i + 1 < arguments.count { value = arguments[i + 1] }
            if arg.hasPrefix("--log-format=") { value = String(arg.dropFirst("--log-format=".count)) }
        }
        return value.flatMap(LogFormat.init(rawValue:)) ?? .text
    }
}

/// One JSON object per log line, for log collectors (`--log-format json`).
public typealias JSONLogHandler = LineLogHandler<JSONLogFormat>

/// `time` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`, then every metadata key at
/// the top level (the runner's keys: `app_id`, `fn_id`, `call_id`, `container`, `image`, …). A
/// metadata key that collides with those four is written as `metadata.<key>`.
public enum JSONLogFormat: LogLineFormat {
    static let reserved: Set<String> = ["time", "level", "logger", "message"]

    public static func line(label: String, event: LogEvent, fields: Logger.Metadata) -> String {
        var out = "{\"time\":\"\(WallClock.rfc3339(WallClock.nowNanos(), millis: true))\",\"level\":\"\(event.level.rawValue)\","
        out += "\"logger\":" + quoted(label) + ",\"message\":" + quoted(event.message.description)
        for key in fields.keys.sorted() {
            let name = reserved.contains(key) ? "metadata." + key : key
            out += "," + quoted(name) + ":" + encode(fields[key]!)
        }
        return out + "}\n"
    }

    static func encode(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return quoted(s)
        case .stringConvertible(let c): return quoted(c.description)
        case .array(let items): return "[" + items.map(encode).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { quoted($0) + ":" + encode(d[$0]!) }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ s: String) -> String { JSONString.quoted(s) }
}
