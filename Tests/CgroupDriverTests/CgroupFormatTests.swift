import CgroupDriver
import RunnerOS
import Testing

/// The v2 and v1 file formats, checked against a fake cgroup root (no privileges needed).
@Suite struct CgroupFormatTests {
    @Test func v2LimitsAreWrittenAsMemoryMaxSwapMaxZeroAndPidsMax() throws {
        let fake = try FakeCgroupRoot()
        for level in ["fnrunner", "fnrunner/i1", "fnrunner/i1/c1"] { try fake.makeV2Group(level) }
        let driver = try CgroupDriver(layout: fake.v2Layout)
        try driver.prepareInstance("i1")
        #expect(try fake.get("fnrunner/cgroup.subtree_control") == "+memory +cpu +pids")
        #expect(try fake.get("fnrunner/i1/cgroup.subtree_control") == "+memory +cpu +pids")
        let cg = try driver.create(
            instance: "i1", container: "c1", limits: ResourceLimits(memoryBytes: 64 << 20, cpuMillicores: 250, pids: 20))
        #expect(try fake.get("fnrunner/i1/c1/memory.max") == "67108864")
        #expect(try fake.get("fnrunner/i1/c1/memory.swap.max") == "0")
        #expect(try fake.get("fnrunner/i1/c1/pids.max") == "20")
        try driver.applyCPU(cg, millicores: 250)
        #expect(try fake.get("fnrunner/i1/c1/cpu.max") == "25000 100000")
        try driver.applyCPU(cg, millicores: nil)
        #expect(try fake.get("fnrunner/i1/c1/cpu.max") == "max 100000")
    }

    @Test func aV2ReclaimAsksForEverythingTheCgroupHoldsAndReportsBeforeAndAfter() throws {
        let fake = try FakeCgroupRoot()
        try fake.makeV2Group("fnrunner/i1/c1")
        try fake.put("fnrunner/i1/c1/memory.current", "1048576\n")
        try fake.put("fnrunner/i1/c1/memory.reclaim", "")
        let driver = try CgroupDriver(layout: fake.v2Layout)
        let cg = driver.containerSet(instance: "i1", container: "c1")
        #expect(driver.canReclaimMemory)
        let r = try driver.reclaimMemory(cg)
        #expect(try fake.get("fnrunner/i1/c1/memory.reclaim") == "1048576")
        #expect(r == CgroupDriver.Reclaim(beforeBytes: 1_048_576, afterBytes: 1_048_576))
    }

    @Test func hybridAndV1HostsCannotReclaimAndSaySo() throws {
        let fake = try FakeCgroupRoot()
        for layout in [fake.hybridLayout, fake.legacyLayout] {
            let driver = try CgroupDriver(layout: layout)
            #expect(!driver.canReclaimMemory)
            #expect {
                _ = try driver.reclaimMemory(driver.containerSet(instance: "i1", container: "c1"))
            } throws: { error in
                (error as? RunnerError)?.code == .unsupported && (error as? RunnerError)?.message.contains("memory.reclaim needs the cgroup v2") == true
            }
        }
    }

    @Test func v2UnlimitedIsWrittenAsMax() throws {
        let fake = try FakeCgroupRoot()
        try fake.makeV2Group("fnrunner/i1/c1")
        let driver = try CgroupDriver(layout: fake.v2Layout)
        _ = try driver.create(instance: "i1", container: "c1", limits: ResourceLimits())
        #expect(try fake.get("fnrunner/i1/c1/memory.max") == "max")
        #expect(try fake.get("fnrunner/i1/c1/pids.max") == "max")
    }

    @Test func v2RefusesARootWhoseParentDoesNotDelegateTheControllers() throws {
        let fake = try FakeCgroupRoot()
        try fake.makeV2Group("fnrunner", controllers: "cpu pids")
        let driver = try CgroupDriver(layout: fake.v2Layout)
        let error = #expect(throws: RunnerError.self) { try driver.prepareInstance("i1") }
        #expect(error?.code == .unsupported)
        #expect(error?.message.contains("memory") == true)
        #expect(try fake.get("fnrunner/cgroup.subtree_control") == "")
    }

    @Test func v1LimitsSetMemoryAndMemswToTheSameValueAndTheCFSQuota() throws {
        let fake = try FakeCgroupRoot()
        try fake.makeV1Group(
            "memory", "fnrunner/i1/c1", files: ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness"])
        try fake.makeV1Group("cpu", "fnrunner/i1/c1", files: ["cpu.cfs_period_us", "cpu.cfs_quota_us"])
        try fake.makeV1Group("pids", "fnrunner/i1/c1", files: ["pids.max"])
        try fake.put("unified/fnrunner/i1/c1/cgroup.procs", "")
        let driver = try CgroupDriver(layout: fake.hybridLayout)
        let cg = try driver.create(
            instance: "i1", container: "c1", limits: ResourceLimits(memoryBytes: 128 << 20, cpuMillicores: 1500, pids: 64))
        #expect(try fake.get("memory/fnrunner/i1/c1/memory.limit_in_bytes") == "134217728")
        #expect(try fake.get("memory/fnrunner/i1/c1/memory.memsw.limit_in_bytes") == "134217728")
        #expect(try fake.get("memory/fnrunner/i1/c1/memory.swappiness") == "0")
        #expect(try fake.get("pids/fnrunner/i1/c1/pids.max") == "64")
        try driver.applyCPU(cg, millicores: 1500)
        #expect(try fake.get("cpu/fnrunner/i1/c1/cpu.cfs_period_us") == "100000")
        #expect(try fake.get("cpu/fnrunner/i1/c1/cpu.cfs_quota_us") == "150000")
        #expect(cg.v1AttachPaths.count == 3)
        #expect(cg.v2Path == fake.dir + "/unified/fnrunner/i1/c1")
    }

    @Test func v1WithoutSwapAccountingStillLimitsMemory() throws {
        let fake = try FakeCgroupRoot()
        try fake.makeV1Group("memory", "fnrunner/i1/c1", files: ["memory.limit_in_bytes", "memory.swappiness"])
        try fake.makeV1Group("pids", "fnrunner/i1/c1", files: ["pids.max"])
        try fake.makeV1Group("cpu", "fnrunner/i1/c1", files: [])
        try fake.put("unified/fnrunner/i1/c1/cgroup.procs", "")
        let driver = try CgroupDriver(layout: fake.hybridLayout)
        _ = try driver.create(instance: "i1", container: "c1", limits: ResourceLimits(memoryBytes: 32 << 20))
        #expect(try fake.get("memory/fnrunner/i1/c1/memory.limit_in_bytes") == "33554432")
    }

    /// Container c1's CPU and memory counters in v2 files: 1.5 ms of CPU, 30 periods, 12
    /// throttled for 4 ms, 1 MiB in use, 2 MiB at peak.
    static func putV2Counters(_ fake: FakeCgroupRoot) throws {
        try fake.put("fnrunner/i1/c1/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 30\nnr_throttled 12\nthrottled_usec 4000\n")
        try fake.put("fnrunner/i1/c1/memory.current", "1048576\n")
        try fake.put("fnrunner/i1/c1/memory.peak", "2097152\n")
    }

    /// The same in v1 files: 777 µs of CPU, 10 periods, 4 throttled for 900 µs, 4 KiB in use,
    /// 8 KiB at peak.
    static func putLegacyCounters(_ fake: FakeCgroupRoot) throws {
        try fake.put("cpu,cpuacct/fnrunner/i1/c1/cpu.stat", "nr_periods 10\nnr_throttled 4\nthrottled_time 900000\n")
        try fake.put("cpu,cpuacct/fnrunner/i1/c1/cpuacct.usage", "777000\n")
        try fake.put("memory/fnrunner/i1/c1/memory.usage_in_bytes", "4096\n")
        try fake.put("memory/fnrunner/i1/c1/memory.max_usage_in_bytes", "8192\n")
    }

    @Test func v2StatsComeFromCpuStatMemoryCurrentPeakAndPidsCurrent() throws {
        let fake = try FakeCgroupRoot()
        try Self.putV2Counters(fake)
        try fake.put("fnrunner/i1/c1/pids.current", "3\n")
        let driver = try CgroupDriver(layout: fake.v2Layout)
        let s = try driver.stats(driver.containerSet(instance: "i1", container: "c1"))
        #expect(s.cpuUsageNanos == 1_500_000)
        #expect(s.cpuPeriods == 30)
        #expect(s.cpuThrottledPeriods == 12)
        #expect(s.cpuThrottledNanos == 4_000_000)
        #expect(s.memoryCurrentBytes == 1_048_576)
        #expect(s.memoryPeakBytes == 2_097_152)
        #expect(s.pidsCurrent == 3)
    }

    @Test func legacyStatsComeFromCpuacctCpuStatAndMemoryUsage() throws {
        let fake = try FakeCgroupRoot()
        try Self.putLegacyCounters(fake)
        try fake.put("pids/fnrunner/i1/c1/pids.current", "2\n")
        let driver = try CgroupDriver(layout: fake.legacyLayout)
        let s = try driver.stats(driver.containerSet(instance: "i1", container: "c1"))
        #expect(s.cpuUsageNanos == 777_000)
        #expect(s.cpuThrottledPeriods == 4)
        #expect(s.cpuThrottledNanos == 900_000)
        #expect(s.memoryCurrentBytes == 4096)
        #expect(s.memoryPeakBytes == 8192)
        #expect(s.pidsCurrent == 2)
    }

    @Test func theCallStatsReaderRereadsTheCountersThroughDescriptorsOpenedOnce() throws {
        let fake = try FakeCgroupRoot()
        try Self.putV2Counters(fake)
        let driver = try CgroupDriver(layout: fake.v2Layout)
        let reader = driver.statsReader(driver.containerSet(instance: "i1", container: "c1"), throttling: true)
        var s = reader.read()
        #expect(s.cpuUsageNanos == 1_500_000 && s.cpuPeriods == 30 && s.cpuThrottledPeriods == 12 && s.cpuThrottledNanos == 4_000_000)
        #expect(s.memoryCurrentBytes == 1_048_576 && s.memoryPeakBytes == 2_097_152)
        let forCall = reader.read(memoryNow: false)
        #expect(forCall.memoryCurrentBytes == 0 && forCall.memoryPeakBytes == 2_097_152 && forCall.cpuUsageNanos == 1_500_000, "a call's read skips memory now")
        // After the next call: the same descriptors, the new values.
        try fake.put("fnrunner/i1/c1/cpu.stat", "usage_usec 99000000\nnr_periods 31\nnr_throttled 12\nthrottled_usec 4000\n")
        try fake.put("fnrunner/i1/c1/memory.current", "4096\n")
        try fake.put("fnrunner/i1/c1/memory.peak", "max\n")
        s = reader.read()
        #expect(s.cpuUsageNanos == 99_000_000_000 && s.cpuPeriods == 31 && s.memoryCurrentBytes == 4096)
        #expect(s.memoryPeakBytes == nil, "a value that is not a number is no peak")
        reader.close()
        #expect(reader.read() == CgroupStats(), "closed: nothing is read")
    }

    @Test func theLegacyCallStatsReaderTakesThrottlingFromCpuStatAndUsageFromCpuacct() throws {
        let fake = try FakeCgroupRoot()
        try Self.putLegacyCounters(fake)
        let driver = try CgroupDriver(layout: fake.legacyLayout)
        let cg = driver.containerSet(instance: "i1", container: "c1")
        let s = driver.statsReader(cg, throttling: true).read()
        #expect(s.cpuUsageNanos == 777_000 && s.cpuPeriods == 10 && s.cpuThrottledPeriods == 4 && s.cpuThrottledNanos == 900_000)
        #expect(s.memoryCurrentBytes == 4096 && s.memoryPeakBytes == 8192)
        #expect(driver.statsReader(cg, throttling: false).read().cpuThrottledPeriods == 0, "no quota: cpu.stat is not read")
    }

    @Test func keyValueLinesThatAreNotAKeyAndOneNumberAreSkipped() {
        let text = "a 1\nb two\nc 3 4\nf  7\n\ng -1\nh 18446744073709551615\ni 18446744073709551616\nj\n"
        #expect(CgroupFileFormat.keyValues(text) == ["a": 1, "f": 7, "h": UInt64.max])
        #expect(CgroupFileFormat.number(" 42\n") == 42)
        #expect(CgroupFileFormat.number("max\n") == nil && CgroupFileFormat.number("-1") == nil && CgroupFileFormat.number("") == nil)
    }

    @Test func oomKillsAreReadFromMemoryEventsOnV2AndOomControlOnV1() throws {
        let fake = try FakeCgroupRoot()
        try fake.put("fnrunner/i1/c1/memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n")
        let v2 = try CgroupDriver(layout: fake.v2Layout)
        #expect(try v2.memoryEvents(v2.containerSet(instance: "i1", container: "c1")) == MemoryEvents(oom: 1, oomKills: 1))

        try fake.put("memory/fnrunner/i1/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
        try fake.put("memory/fnrunner/i1/c1/memory.failcnt", "7\n")
        let v1 = try CgroupDriver(layout: fake.legacyLayout)
        #expect(try v1.memoryEvents(v1.containerSet(instance: "i1", container: "c1")).oomKills == 2)
    }

    @Test func namesThatCouldEscapeTheRootAreRefused() throws {
        for bad in ["", "/abs", "a/../b", "..", "a//b", "trailing/", "line\nbreak", "crlf\r\nbreak", "nul\0byte"] {
            #expect(throws: RunnerError.self) { _ = try CgroupDriver(layout: CgroupLayout(v2Mount: "/x", v1Mounts: [:]), rootName: bad) }
        }
        let driver = try CgroupDriver(layout: CgroupLayout(v2Mount: "/nonexistent", v1Mounts: [:]))
        #expect(throws: RunnerError.self) { _ = try driver.create(instance: "i", container: "../x", limits: ResourceLimits()) }
        #expect(throws: RunnerError.self) { try driver.prepareInstance("a/b") }
    }

    @Test func limitsOutOfRangeAreRejectedWithTheRangeInTheMessage() {
        let cases: [ResourceLimits] = [
            ResourceLimits(memoryBytes: 1 << 20), ResourceLimits(cpuMillicores: 0), ResourceLimits(cpuMillicores: 5),
            ResourceLimits(cpuMillicores: 3000), ResourceLimits(pids: 0), ResourceLimits(pids: 5_000_000),
        ]
        for limits in cases {
            let error = #expect(throws: RunnerError.self) { try limits.validate(hostCPUs: 2) }
            #expect(error?.code == .invalidArgument)
        }
        #expect(throws: Never.self) { try ResourceLimits(memoryBytes: 6 << 20, cpuMillicores: 2000, pids: 1).validate(hostCPUs: 2) }
    }
}
