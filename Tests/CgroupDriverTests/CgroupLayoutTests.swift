import CgroupDriver
import RunnerOS
import Testing

@Suite struct CgroupLayoutTests {
    static let hybrid = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """

    @Test func aHostWithV1ControllersAndAV2TreeIsHybrid() throws {
        let layout = CgroupLayout.detect(mountinfo: try MountInfo.parse(Self.hybrid))
        #expect(layout.kind == .hybrid)
        #expect(layout.v2Mount == "/sys/fs/cgroup/unified")
        #expect(layout.v1Mounts["memory"] == "/sys/fs/cgroup/memory")
        #expect(layout.v1Controllers == ["memory", "cpu", "pids"])
    }

    @Test func aHostWithOnlyCgroup2IsUnified() throws {
        let text = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot"
        let layout = CgroupLayout.detect(mountinfo: try MountInfo.parse(text))
        #expect(layout.kind == .unified)
        #expect(layout.v2Mount == "/sys/fs/cgroup")
        #expect(layout.v1Controllers.isEmpty)
    }

    @Test func aHostWithoutCgroup2IsLegacyAndUsesTheV1FreezerAndCpuacct() throws {
        let text = """
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
            39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
            """
        let layout = CgroupLayout.detect(mountinfo: try MountInfo.parse(text))
        #expect(layout.kind == .legacy)
        #expect(layout.v1Mounts["cpu"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(layout.v1Mounts["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(layout.v1Controllers == ["memory", "cpu", "pids", "cpuacct", "freezer"])
    }

    @Test func mountinfoOctalEscapesAreDecoded() throws {
        let text = "50 23 0:40 / /mnt/with\\040space rw - tmpfs tmpfs rw"
        #expect(try MountInfo.parse(text)[0].mountPoint == "/mnt/with space")
    }

    @Test func aMalformedMountinfoLineIsAnError() {
        #expect(throws: RunnerError.self) { try MountInfo.parse("garbage line") }
    }

    @Test func thisHostsLayoutIsDetected() throws {
        let layout = try CgroupLayout.detect()
        #expect(layout.v2Mount != nil || !layout.v1Mounts.isEmpty)
    }
}
