import CgroupDriver
import RunnerOS
import TestSupport
import Testing

/// The driver against this machine's real cgroups, under a private root.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct CgroupDriverHostTests {
    @Test func aCgroupIsCreatedLimitedAndRemovedWithoutATrace() throws {
        let env = TestEnvironment("drv")
        defer { env.cleanUp() }
        let driver = try CgroupDriver(layout: try CgroupLayout.detect(), rootName: env.cgroupRoot)
        try driver.prepareInstance("i1")
        let cg = try driver.create(
            instance: "i1", container: "c1", limits: ResourceLimits(memoryBytes: 48 << 20, cpuMillicores: 300, pids: 7))
        try driver.applyCPU(cg, millicores: 300)
        if let mem = cg.v1Paths["memory"] {
            #expect(try FileSystem.read(mem + "/memory.limit_in_bytes").trimmed == "50331648")
        } else if let v2 = cg.v2Path {
            #expect(try FileSystem.read(v2 + "/memory.max").trimmed == "50331648")
        }
        #expect(try driver.livePids(cg).isEmpty)
        #expect(try driver.stats(cg).pidsCurrent == 0)
        #expect(try driver.containers(ofInstance: "i1") == ["c1"])
        try driver.removeInstance("i1")
        driver.removeRootIfEmpty()
        #expect(env.cgroupDirectories().isEmpty)
    }
}
