import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The counters a call's stats are made from (CPU time, throttling, memory now and at peak),
/// read through descriptors opened once per container: reading them after every call must cost
/// a few microseconds, not an open and a close per file.
public final class CgroupStatsReader: Sendable {
    private enum Source {
        case cpuStat, v1CPUAcct, memoryCurrent, memoryPeak
    }
    /// pread at offset 0 re-reads a cgroup file; emptied by `close()`. Held across a read so
    /// that a close never lets a read land on a descriptor number reused meanwhile.
    private let files: Mutex<[(Source, Int32)]>

    /// `throttling`: whether to read the CPU throttling counters (only meaningful, and only
    /// worth a read per call, when the container has a CPU quota).
    init(_ cg: CgroupSet, layout: CgroupLayout, throttling: Bool) {
        var paths: [(Source, String)] = []
        if let v2 = cg.v2Path { paths.append((.cpuStat, v2 + "/cpu.stat")) }
        if layout.kind == .unified, let v2 = cg.v2Path {
            paths += [(.memoryCurrent, v2 + "/memory.current"), (.memoryPeak, v2 + "/memory.peak")]
        } else {
            if throttling, let cpu = cg.v1Paths["cpu"] { paths.append((.cpuStat, cpu + "/cpu.stat")) }
            if let acct = cg.v1Paths["cpuacct"], cg.v2Path == nil { paths.append((.v1CPUAcct, acct + "/cpuacct.usage")) }
            if let mem = cg.v1Paths["memory"] {
                paths += [(.memoryCurrent, mem + "/memory.usage_in_bytes"), (.memoryPeak, mem + "/memory.max_usage_in_bytes")]
            }
        }
        files = Mutex(
            paths.compactMap { source, path in
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                return fd < 0 ? nil : (source, fd)
            })
    }

    /// Closes the descriptors, when the container ends: an open file of a removed cgroup pins
    /// it in the kernel. Reads afterwards find nothing. Idempotent.
    public func close() {
        let open = files.withLock { f -> [(Source, Int32)] in
            defer { f = [] }
            return f
        }
        for (_, fd) in open { _ = Glibc.close(fd) }
    }

    deinit { close() }

    private static let usageUsec = Array("usage_usec".utf8)
    private static let nrPeriods = Array("nr_periods".utf8)
    private static let nrThrottled = Array("nr_throttled".utf8)
    private static let throttledUsec = Array("throttled_usec".utf8)
    private static let throttledTime = Array("throttled_time".utf8)

    /// The counters now (fields whose files are missing stay 0 or nil); without `memoryNow`,
    /// the memory in use is not read and stays 0.
    public func read(memoryNow: Bool = true) -> CgroupStats {
        var s = CgroupStats()
        files.withLock { files in withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer in
            for (source, fd) in files where memoryNow || source != .memoryCurrent {
                let n = pread(fd, buffer.baseAddress, buffer.count, 0)
                if n <= 0 { continue }
                let bytes = UnsafeBufferPointer(rebasing: buffer[0..<n])
                switch source {
                case .cpuStat:
                    // v2's and v1's cpu.stat (a hybrid host reads both) share no key they
                    // differ in: usage_usec and throttled_usec are v2's, throttled_time v1's.
                    CgroupFileFormat.forEachKeyValue(bytes) { key, value in
                        if key.elementsEqual(Self.usageUsec) {
                            s.cpuUsageNanos = value &* 1000
                        } else if key.elementsEqual(Self.nrPeriods) {
                            s.cpuPeriods = value
                        } else if key.elementsEqual(Self.nrThrottled) {
                            s.cpuThrottledPeriods = value
                        } else if key.elementsEqual(Self.throttledUsec) {
                            s.cpuThrottledNanos = value &* 1000
                        } else if key.elementsEqual(Self.throttledTime) {
                            s.cpuThrottledNanos = value
                        }
                    }
                case .v1CPUAcct: s.cpuUsageNanos = CgroupFileFormat.decimal(bytes) ?? 0
                case .memoryCurrent: s.memoryCurrentBytes = CgroupFileFormat.decimal(bytes) ?? 0
                case .memoryPeak: s.memoryPeakBytes = CgroupFileFormat.decimal(bytes)
                }
            }
        } }
        return s
    }
}

extension CgroupDriver {
    /// A reader of `cg`'s call counters; keep it for the container's life.
    public func statsReader(_ cg: CgroupSet, throttling: Bool) -> CgroupStatsReader {
        CgroupStatsReader(cg, layout: layout, throttling: throttling)
    }
}
