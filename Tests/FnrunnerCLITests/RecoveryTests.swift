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
            let common = ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--rootfs", try await Fixtures.busybox()]
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
            // A process the runner cloned keeps its lock until it execs or dies; under load that
            // can outlast the runner a moment. A holder that never lets go is the failure, named.
            let locks = try FileSystem.subdirectories(env.stateDirectory + "/instances").map { env.stateDirectory + "/instances/\($0)/lock" }
            do {
                try await waitUntil { locks.allSatisfy { Self.holders(of: $0).isEmpty } }
            } catch {
                Issue.record("an instance lock is still held: \(locks.map { "\($0): \(Self.holders(of: $0))" })")
            }

            let sandbox = try Sandbox(configuration: env.configuration)
            let holders = (try? await Shell.output("ls -la \(env.stateDirectory)/instances/*/ 2>&1")) ?? ""
            #expect(sandbox.recovered.instances.count == 2, "\(sandbox.recovered) \(holders)")
            #expect(sandbox.recovered.containerCount == 2)
            for pid in containerPids {
                // Reaped by init (or a subreaper) shortly after the kill.
                try await waitUntil { !Host.isRunning(pid) }
            }
            #expect(try driver.instances() == [sandbox.instanceID])
            #expect(try FileSystem.subdirectories(env.stateDirectory + "/instances") == [sandbox.instanceID])
            await sandbox.shutdown()
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    /// The processes with `path` open (its flock lasts while one of them has it), as
    /// "pid comm"; empty when none.
    static func holders(of path: String) -> [String] {
        var found: [String] = []
        for pid in (try? FileSystem.list("/proc")) ?? [] where Int32(pid) != nil {
            for fd in (try? FileSystem.list("/proc/\(pid)/fd")) ?? [] {
                var target = [CChar](repeating: 0, count: 4096)
                let n = readlink("/proc/\(pid)/fd/\(fd)", &target, target.count - 1)
                guard n > 0, String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == path else { continue }
                found.append("\(pid) \((try? FileSystem.read("/proc/\(pid)/comm"))?.trimmed ?? "?")")
            }
        }
        return found
    }

    @Test func aLiveRunnersContainersAreNeverReclaimed() async throws {
        try await withSharedGate {
            let env = TestEnvironment("rec")
            defer { env.cleanUp() }
            let first = try Sandbox(configuration: env.configuration)
            let c = try first.start(try await busyboxSpec(["/bin/sleep", "60"]))
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
