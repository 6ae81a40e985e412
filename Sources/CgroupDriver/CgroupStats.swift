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
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count == 2, let v = UInt64(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }

    /// A single number ("max" or "-1" mean unlimited and yield nil).
    public static func number(_ text: String) -> UInt64? {
        UInt64(text.trimmed)
    }

    /// The pids listed in cgroup.procs.
    public static func pids(_ text: String) -> [Int32] {
        text.split(separator: "\n").compactMap { Int32($0) }
    }
}
