/// One step of a longer operation (a container start's clone, say) with when it began and
/// ended on the monotonic clock: recorded as it happens, read later by logs, metrics and
/// traces, so none of them has to be on the operation's path.
public struct TimedPhase: Sendable, Equatable {
    public var name: String
    /// Monotonic nanoseconds (`MonotonicClock.nowNanos()`).
    public var start: UInt64
    public var end: UInt64

    public init(_ name: String, start: UInt64, end: UInt64) {
        self.name = name
        self.start = start
        self.end = end
    }

    /// A phase that began at `start` and ends now.
    public static func ending(_ name: String, from start: UInt64) -> TimedPhase {
        TimedPhase(name, start: start, end: MonotonicClock.nowNanos())
    }

    public var seconds: Double { Double(end &- start) / 1e9 }

    /// Seconds as milliseconds with one decimal ("12.3"), as the log lines of starts and thaws
    /// print them.
    public static func millisText(_ seconds: Double) -> String {
        let tenths = Int((seconds * 10_000).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
