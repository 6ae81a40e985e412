import RunnerOS

extension CgroupDriver {
    /// Reads CPU, memory and pids counters from wherever this layout keeps them.
    public func stats(_ cg: CgroupSet) throws(RunnerError) -> CgroupStats {
        var s = CgroupStats()
        if let v2 = cg.v2Path, FileSystem.exists(v2 + "/cpu.stat") {
            let cpu = CgroupFileFormat.keyValues(try FileSystem.read(v2 + "/cpu.stat"))
            s.cpuUsageNanos = (cpu["usage_usec"] ?? 0) * 1000
            if layout.kind == .unified {
                s.cpuPeriods = cpu["nr_periods"] ?? 0
                s.cpuThrottledPeriods = cpu["nr_throttled"] ?? 0
                s.cpuThrottledNanos = (cpu["throttled_usec"] ?? 0) * 1000
            }
        }
        if layout.kind == .unified, let v2 = cg.v2Path {
            s.memoryCurrentBytes = CgroupFileFormat.number(try FileSystem.read(v2 + "/memory.current")) ?? 0
            if FileSystem.exists(v2 + "/memory.peak") {
                s.memoryPeakBytes = CgroupFileFormat.number(try FileSystem.read(v2 + "/memory.peak"))
            }
            s.pidsCurrent = CgroupFileFormat.number(try FileSystem.read(v2 + "/pids.current")) ?? 0
            return s
        }
        if let cpu = cg.v1Paths["cpu"] {
            let kv = CgroupFileFormat.keyValues(try FileSystem.read(cpu + "/cpu.stat"))
            s.cpuPeriods = kv["nr_periods"] ?? 0
            s.cpuThrottledPeriods = kv["nr_throttled"] ?? 0
            s.cpuThrottledNanos = kv["throttled_time"] ?? 0
        }
        if let acct = cg.v1Paths["cpuacct"], cg.v2Path == nil {
            s.cpuUsageNanos = CgroupFileFormat.number(try FileSystem.read(acct + "/cpuacct.usage")) ?? 0
        }
        if let mem = cg.v1Paths["memory"] {
            s.memoryCurrentBytes = CgroupFileFormat.number(try FileSystem.read(mem + "/memory.usage_in_bytes")) ?? 0
            s.memoryPeakBytes = CgroupFileFormat.number(try FileSystem.read(mem + "/memory.max_usage_in_bytes"))
        }
        if let pids = cg.v1Paths["pids"] {
            s.pidsCurrent = CgroupFileFormat.number(try FileSystem.read(pids + "/pids.current")) ?? 0
        }
        return s
    }

    /// OOM counters: v2 memory.events, v1 memory.oom_control. A container whose cgroup shows an
    /// oom_kill was killed for its memory limit, whatever exit code its process reports.
    public func memoryEvents(_ cg: CgroupSet) throws(RunnerError) -> MemoryEvents {
        if layout.kind == .unified, let v2 = cg.v2Path {
            let kv = CgroupFileFormat.keyValues(try FileSystem.read(v2 + "/memory.events"))
            return MemoryEvents(oom: kv["oom"] ?? 0, oomKills: kv["oom_kill"] ?? 0)
        }
        guard let mem = cg.v1Paths["memory"] else { return MemoryEvents() }
        let kv = CgroupFileFormat.keyValues(try FileSystem.read(mem + "/memory.oom_control"))
        let failures = CgroupFileFormat.number(try FileSystem.read(mem + "/memory.failcnt")) ?? 0
        return MemoryEvents(oom: kv["under_oom"].map { $0 + failures } ?? failures, oomKills: kv["oom_kill"] ?? 0)
    }
}
