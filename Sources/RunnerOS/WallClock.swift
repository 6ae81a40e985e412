#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Calendar time, for the timestamps people read (call records, deadlines sent to functions).
/// Without Foundation: these are formatted on every call.
public enum WallClock {
    /// Nanoseconds since the Unix epoch.
    public static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// RFC 3339 in UTC: `2006-01-02T15:04:05.000Z` with `millis`, else `2006-01-02T15:04:05Z`.
    public static func rfc3339(_ nanos: UInt64, millis: Bool) -> String {
        var seconds = time_t(nanos / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        var text = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
        text += "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
        if millis { text += "." + pad(Int32(nanos / 1_000_000 % 1000), 3) }
        return text + "Z"
    }
}
