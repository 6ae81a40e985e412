import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CgroupDriver {
    /// The file writes that express memory and pids limits on this layout, in order.
    /// Pure and public so the v1 and v2 formats can be checked without a kernel.
    public func memoryAndPidsWrites(_ cg: CgroupSet, _ limits: ResourceLimits) -> [(path: String, value: String, optional: Bool)] {
        var writes: [(String, String, Bool)] = []
        if layout.kind == .unified, let v2 = cg.v2Path {
            writes.append((v2 + "/memory.max", limits.memoryBytes.map(String.init) ?? "max", false))
            // No swap: absent where the kernel has no swap accounting.
            writes.append((v2 + "/memory.swap.max", "0", true))
            writes.append((v2 + "/pids.max", limits.pids.map(String.init) ?? "max", false))
        } else {
            if let mem = cg.v1Paths["memory"] {
                let value = limits.memoryBytes.map(String.init) ?? "-1"
                if limits.memoryBytes == nil {
                    // Raising: memsw first, because memsw must stay >= the memory limit.
                    writes.append((mem + "/memory.memsw.limit_in_bytes", value, true))
                    writes.append((mem + "/memory.limit_in_bytes", value, false))
                } else {
                    writes.append((mem + "/memory.limit_in_bytes", value, false))
                    writes.append((mem + "/memory.memsw.limit_in_bytes", value, true))
                }
                writes.append((mem + "/memory.swappiness", "0", true))
            }
            if let pids = cg.v1Paths["pids"] {
                writes.append((pids + "/pids.max", limits.pids.map(String.init) ?? "max", false))
            }
        }
        return writes
    }

    /// The file writes for a CPU limit on this layout.
    public func cpuWrites(_ cg: CgroupSet, millicores: Int?) -> [(path: String, value: String)] {
        let quota = millicores.map { $0 * ResourceLimits.cpuPeriodMicros / 1000 }
        let period = ResourceLimits.cpuPeriodMicros
        if layout.kind == .unified, let v2 = cg.v2Path {
            return [(v2 + "/cpu.max", "\(quota.map(String.init) ?? "max") \(period)")]
        }
        guard let cpu = cg.v1Paths["cpu"] else { return [] }
        return [(cpu + "/cpu.cfs_period_us", String(period)), (cpu + "/cpu.cfs_quota_us", quota.map(String.init) ?? "-1")]
    }

    /// Applies memory and pids limits to an existing cgroup (a pooled one, at claim time).
    public func applyMemoryAndPids(_ cg: CgroupSet, _ limits: ResourceLimits) throws(RunnerError) {
        for w in memoryAndPidsWrites(cg, limits) {
            do {
                try FileSystem.write(w.path, w.value)
            } catch where w.optional && (error.errno == ENOENT || error.errno == EINVAL) {
                // memsw and swap.max do not exist without swap accounting; swappiness is
                // refused on some kernels for non-root groups. Neither weakens the limit.
            }
        }
    }

    /// Applies (or lifts, with nil) the CPU quota of a container's cgroup.
    public func applyCPU(_ cg: CgroupSet, millicores: Int?) throws(RunnerError) {
        for w in cpuWrites(cg, millicores: millicores) { try FileSystem.write(w.path, w.value) }
    }
}
