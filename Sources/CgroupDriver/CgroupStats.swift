import RunnerOS

/// A snapshot of a container cgroup's counters.
public struct CgroupStats: Sendable, Equatable {
    /// CPU time used by every task in the cgroup, in nanoseconds.
    public var cpuUsageNanos: UInt64 = 0
    /// CFS periods that elapsed while the cgroup had runnable tasks.
    public var cpuPeriods: UInt64 = 0
    /// Periods in which the cgroup hit its quota.
    public var cpuThrottledPeriods: UInt64 = 0
    /// Total time the cgroup was throttled, in nanoseconds.
    public var cpuThrottledNanos: UInt64 = 0
    public var memoryCurrentBytes: UInt64 = 0
    /// High-water mark of memory use; nil where the kernel does not offer it.
    public var memoryPeakBytes: UInt64?
    public var pidsCurrent: UInt64 = 0

    public init() {}
}

/// Counters of memory events; `oomKills` > 0 means the kernel killed a task for the limit.
public struct MemoryEvents: Sendable, Equatable {
    public var oom: UInt64 = 0
    public var oomKills: UInt64 = 0
    public init(oom: UInt64 = 0, oomKills: UInt64 = 0) {
        self.oom = oom
        self.oomKills = oomKills
    }
}

/// Parsers for the "key value" files of cgroupfs (cpu.stat, memory.events, memory.oom_control).
public enum CgroupFileFormat {
    public static func keyValues(_ text: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        var copy = text
        copy.withUTF8 { bytes in forEachKeyValue(bytes) { key, value in out[String(decoding: key, as: UTF8.self)] = value } }
        return out
    }

    /// Each "key value" line of `bytes` whose value is a number, in order, with no String or
    /// Dictionary made: a call's stats read cpu.stat after every call.
    public static func forEachKeyValue(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>, UInt64) -> Void) {
        var i = 0
        while i < bytes.count {
            var end = i
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            // key, spaces, digits: anything else on the line (a third field, a sign) skips it.
            var keyEnd = i
            while keyEnd < end && bytes[keyEnd] != 0x20 { keyEnd += 1 }
            var j = keyEnd
            while j < end && bytes[j] == 0x20 { j += 1 }
            if keyEnd > i, j > keyEnd, j < end, let value = decimal(UnsafeBufferPointer(rebasing: bytes[j..<end])) {
                body(UnsafeBufferPointer(rebasing: bytes[i..<keyEnd]), value)
            }
            i = end + 1
        }
    }

    /// A decimal number of ASCII digits, surrounding whitespace allowed; nil for anything else
    /// or on overflow.
    public static func decimal(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64? {
        var start = 0
        var end = bytes.count
        while start < end && (bytes[start] == 0x20 || bytes[start] == 0x0A || bytes[start] == 0x09) { start += 1 }
        while end > start && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0x0A || bytes[end - 1] == 0x09) { end -= 1 }
        if start == end { return nil }
        var value: UInt64 = 0
        for k in start..<end {
            let d = bytes[k] &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            value = a
        }
        return value
    }

    /// A single number ("max" or "-1" mean unlimited and yield nil).
    public static func number(_ text: String) -> UInt64? {
        var copy = text
        return copy.withUTF8 { decimal($0) }
    }

    /// The pids listed in cgroup.procs.
    public static func pids(_ text: String) -> [Int32] {
        text.split(separator: "\n").compactMap { Int32($0) }
    }
}
