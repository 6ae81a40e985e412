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
        // Digits written into one buffer: an Engage call formats three of these for its end.
        return String(unsafeUninitializedCapacity: 24) { out in
            var i = 0
            func put(_ value: Int32, _ width: Int) {
                var v = max(0, value)
                for k in stride(from: width - 1, through: 0, by: -1) {
                    out[i + k] = UInt8(ascii: "0") + UInt8(v % 10)
                    v /= 10
                }
                i += width
            }
            func put(_ c: Unicode.Scalar) {
                out[i] = UInt8(ascii: c)
                i += 1
            }
            put(parts.tm_year + 1900, 4)
            put("-")
            put(parts.tm_mon + 1, 2)
            put("-")
            put(parts.tm_mday, 2)
            put("T")
            put(parts.tm_hour, 2)
            put(":")
            put(parts.tm_min, 2)
            put(":")
            put(parts.tm_sec, 2)
            if millis {
                put(".")
                put(Int32(nanos / 1_000_000 % 1000), 3)
            }
            put("Z")
            return i
        }
    }
}
