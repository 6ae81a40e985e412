import Runner
import CgroupDriver
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How much memory and CPU the runner may hand out, sized as Fn sizes it: available memory
/// (capped by the runner's own cgroup limit) minus headroom, CPUs × 1000 (capped by the
/// runner's own CFS quota), each then clamped by FN_MAX_TOTAL_MEMORY_BYTES / FN_MAX_TOTAL_CPU_MCPUS.
public struct NodeResources: Sendable, Equatable {
    public var memoryBytes: UInt64
    public var cpuMillicores: UInt64

    public static let minimumHeadroom: UInt64 = 256 << 20
    public static let maximumHeadroom: UInt64 = 5 << 30

    /// The arithmetic, from what was read off the host.
    public static func compute(
        memAvailableBytes: UInt64, cgroupMemoryLimit: UInt64?, cpuCount: Int, cgroupCPUQuota: (quota: Int64, period: Int64)?,
        maxMemoryBytes: UInt64? = nil, maxCPUMillicores: UInt64? = nil
    ) throws(RunnerError) -> NodeResources {
        var memory = memAvailableBytes
        if let limit = cgroupMemoryLimit, limit < memory { memory = limit }
        let headroom = min(max(memory / 10, minimumHeadroom), maximumHeadroom)
        guard memory > headroom, memory - headroom > minimumHeadroom else {
            throw RunnerError(
                .unsupported, "out of memory: \(memory >> 20) MiB available leaves nothing for functions after \(headroom >> 20) MiB headroom",
                step: "size resources")
        }
        memory -= headroom
        if let m = maxMemoryBytes, m > 0, m < memory { memory = m }
        var cpu = UInt64(max(1, cpuCount)) * 1000
        if let q = cgroupCPUQuota, q.quota > 0, q.period > 0 {
            let limit = UInt64(q.quota) * 1000 / UInt64(q.period)
            if limit < cpu { cpu = limit }
        }
        if let c = maxCPUMillicores, c > 0, c < cpu { cpu = c }
        return NodeResources(memoryBytes: memory, cpuMillicores: cpu)
    }

    /// Reads /proc/meminfo, the CPU count and the runner's own cgroup limits (reading only).
    public static func detect(layout: CgroupLayout, maxMemoryBytes: UInt64? = nil, maxCPUMillicores: UInt64? = nil) throws(RunnerError) -> NodeResources {
        let meminfo = try FileSystem.read("/proc/meminfo")
        guard let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
            let kb = line.split(separator: " ").dropFirst().first.flatMap({ UInt64($0) })
        else {
            throw RunnerError(.unsupported, "/proc/meminfo has no MemAvailable line", step: "size resources")
        }
        let own = ownCgroupPaths(layout)
        var memoryLimit: UInt64?
        var quota: (Int64, Int64)?
        if let v1 = own.memory {
            memoryLimit = (try? FileSystem.read(v1 + "/memory.limit_in_bytes")).flatMap { UInt64($0.trimmed) }
        } else if let v2 = own.unified {
            memoryLimit = (try? FileSystem.read(v2 + "/memory.max")).flatMap { UInt64($0.trimmed) }
        }
        if let v1 = own.cpu {
            let q = (try? FileSystem.read(v1 + "/cpu.cfs_quota_us")).flatMap { Int64($0.trimmed) }
            let p = (try? FileSystem.read(v1 + "/cpu.cfs_period_us")).flatMap { Int64($0.trimmed) }
            if let q, let p { quota = (q, p) }
        } else if let v2 = own.unified, let text = try? FileSystem.read(v2 + "/cpu.max") {
            let parts = text.trimmed.split(separator: " ")
            if parts.count == 2, let q = Int64(parts[0]), let p = Int64(parts[1]) { quota = (q, p) }
        }
        return try compute(
            memAvailableBytes: kb * 1024, cgroupMemoryLimit: memoryLimit, cpuCount: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            cgroupCPUQuota: quota, maxMemoryBytes: maxMemoryBytes, maxCPUMillicores: maxCPUMillicores)
    }

    /// The directories of the runner's own cgroups, from /proc/self/cgroup.
    static func ownCgroupPaths(_ layout: CgroupLayout) -> (memory: String?, cpu: String?, unified: String?) {
        guard let text = try? FileSystem.read("/proc/self/cgroup") else { return (nil, nil, nil) }
        var memory: String?
        var cpu: String?
        var unified: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            let controllers = parts[1].split(separator: ",")
            if parts[0] == "0", let v2 = layout.v2Mount { unified = v2 + path }
            if controllers.contains("memory"), let m = layout.v1Mounts["memory"] { memory = m + path }
            if controllers.contains("cpu"), let c = layout.v1Mounts["cpu"] { cpu = c + path }
        }
        return (memory, cpu, unified)
    }
}
