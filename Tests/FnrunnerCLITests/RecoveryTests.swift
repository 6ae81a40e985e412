import CgroupDriver
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"))
struct RecoveryTests {
    @Test func aRunnerKilledWithLiveAndFrozenContainersIsReclaimedByTheNextOne() async throws {
        try await withSharedGate {
            let env = TestEnvironment("rec")
            defer { env.cleanUp() }
            let common = ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--rootfs", try Fixtures.busybox()]
            let live = try Subprocess.fnrunner(common + ["--", "/bin/sleep", "600"])
            let frozen = try Subprocess.fnrunner(common + ["--keep-frozen-ms", "600000", "--", "/bin/sleep", "600"])
            let driver = try CgroupDriver(layout: try CgroupLayout.detect(), rootName: env.cgroupRoot)

            // Both runners have an instance with a container, and one of them is frozen.
            var containerPids: [Int32] = []
            try await waitUntil {
                let instances = try driver.instances()
                guard instances.count == 2 else { return false }
                let sets = try instances.flatMap { i in try driver.containers(ofInstance: i).map { driver.containerSet(instance: i, container: $0) } }
                guard sets.count == 2 else { return false }
                containerPids = try sets.flatMap { try driver.livePids($0) }
                // Both inits have exec'd `sleep` (a child still in set-up briefly holds its runner's lock).
                let sleeping = containerPids.filter { (try? FileSystem.read("/proc/\($0)/comm"))?.trimmed == "sleep" }
                return containerPids.count == 4 && sleeping.count == 2 && frozen.stderr.contains("frozen in")
            }
            live.signal(SIGKILL)
            frozen.signal(SIGKILL)
            await live.exit()
            await frozen.exit()
            #expect(containerPids.allSatisfy { kill($0, 0) == 0 }, "containers outlive their killed runner")

            let sandbox = try Sandbox(configuration: env.configuration)
            let holders = (try? Shell.output("ls -la \(env.stateDirectory)/instances/*/ 2>&1")) ?? ""
            #expect(sandbox.recovered.instances.count == 2, "\(sandbox.recovered) \(holders)")
            #expect(sandbox.recovered.containerCount == 2)
            for pid in containerPids {
                // Reaped by init (or a subreaper) shortly after the kill.
                try await waitUntil { kill(pid, 0) != 0 || (try? FileSystem.read("/proc/\(pid)/stat"))?.contains(") Z") == true }
            }
            #expect(try driver.instances() == [sandbox.instanceID])
            #expect(try FileSystem.subdirectories(env.stateDirectory + "/instances") == [sandbox.instanceID])
            await sandbox.shutdown()
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func aLiveRunnersContainersAreNeverReclaimed() async throws {
        try await withSharedGate {
            let env = TestEnvironment("rec")
            defer { env.cleanUp() }
            let first = try Sandbox(configuration: env.configuration)
            let c = try first.start(try busyboxSpec(["/bin/sleep", "60"]))
            let second = try Sandbox(configuration: env.configuration)
            #expect(second.recovered.isEmpty)
            #expect(c.exit == nil)
            #expect(try c.freezerState() == .thawed)
            await second.shutdown()
            #expect(c.exit == nil)
            await first.shutdown()
            #expect(c.exit != nil)
        }
    }
}
