import CgroupDriver
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The sandbox pool: ready cgroups with a parked launcher in them, so that a start writes no
/// `cgroup.procs` and makes no network namespace. Its behaviour must be invisible: the same
/// containers, the runner still their parent, nothing left behind.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct PoolTests {
    /// Waits (bounded) until the pool holds `count` ready sandboxes.
    func waitForPool(_ sandbox: Sandbox, ready count: Int) async throws {
        try? await waitUntil { sandbox.pooledSandboxesReady >= count }
        try #require(sandbox.pooledSandboxesReady == count, "the pool did not fill")
    }

    func waitUntilGone(_ pid: Int32) async -> Bool {
        (try? await waitUntil { kill(pid, 0) != 0 && errno == ESRCH }) != nil
    }

    /// Field `name` of /proc/<pid>/status.
    func status(_ pid: Int32, _ name: String) throws -> String? {
        try FileSystem.read("/proc/\(pid)/status").split(separator: "\n")
            .first { $0.hasPrefix(name + ":") }.map { $0.dropFirst(name.count + 1).trimmed }
    }

    @Test func aPooledStartInheritsThePoolsCgroupsAndTheRunnerStaysItsParent() async throws {
        try await withSandbox(poolSize: 2) { sandbox, env in
            try await waitForPool(sandbox, ready: 2)
            let launchers = sandbox.parkedLauncherPIDs
            var spec = try await busyboxSpec(["/bin/sleep", "3600"])
            spec.limits = ResourceLimits(memoryBytes: 96 << 20, pids: 32)
            let c = try sandbox.start(spec)
            #expect(sandbox.startCounts == Sandbox.StartCounts(pooled: 1, direct: 0))
            #expect(try status(c.pid, "PPid") == String(getpid()))
            // Every hierarchy: the container is where its cgroup set says, with its limits.
            let layout = try #require(Host.layout)
            let places = try cgroupMembership(c.pid)
            for controller in layout.v1Controllers { #expect(places[controller] == "/" + c.cgroup.relativePath, "\(controller): \(places)") }
            if layout.v2Mount != nil { #expect(places[""] == "/" + c.cgroup.relativePath, "\(places)") }
            if let memory = c.cgroup.v1Paths["memory"] {
                #expect(try FileSystem.read(memory + "/memory.limit_in_bytes").trimmed == String(96 << 20))
            } else if let v2 = c.cgroup.v2Path {
                #expect(try FileSystem.read(v2 + "/memory.max").trimmed == String(96 << 20))
            }
            // The launcher that cloned it exits right after answering and is reaped; the other
            // is still parked. Then the container is alone in its cgroup.
            let used = launchers.filter { !sandbox.parkedLauncherPIDs.contains($0) }
            #expect(used.count == 1)
            #expect(await waitUntilGone(used[0]))
            // Init (c.pid) and the command it started: no launcher.
            let pids = try sandbox.driver.livePids(c.cgroup)
            #expect(pids.count == 2 && pids.contains(c.pid), "only the container, not its launcher: \(pids)")
            try await c.close()
            #expect(!env.cgroupDirectories().contains { $0.hasSuffix("/" + c.cgroup.relativePath) })
        }
    }

    @Test func aPooledContainerHasANetworkNamespaceOfItsOwnWithLoopbackUp() async throws {
        try await withSandbox(poolSize: 2) { sandbox, _ in
            try await waitForPool(sandbox, ready: 2)
            let a = try sandbox.start(try await busyboxSpec(["/bin/sleep", "3600"]))
            let b = try sandbox.start(try await busyboxSpec(["/bin/sleep", "3600"]))
            #expect(sandbox.startCounts.pooled == 2)
            var buf = [CChar](repeating: 0, count: 256)
            func netns(_ pid: Int32) -> String {
                let n = readlink("/proc/\(pid)/ns/net", &buf, buf.count - 1)
                return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            }
            #expect(netns(a.pid) != netns(getpid()))
            #expect(netns(a.pid) != netns(b.pid))
            try await a.close()
            try await b.close()
            try await waitForPool(sandbox, ready: 2)
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/sh", "-c", "cat /proc/net/dev | grep -c :; cat /sys/class/net/lo/flags"]))
            #expect(r.stdout == "1\n0x9\n", "one interface, lo, IFF_UP|IFF_LOOPBACK: \(r.stdout)")
        }
    }

    @Test func aStartOnTheHostNetworkTakesTheDirectPath() async throws {
        try await withSandbox(poolSize: 1) { sandbox, _ in
            try await waitForPool(sandbox, ready: 1)
            var spec = try await busyboxSpec(["/bin/true"])
            spec.network = .host
            let r = try await runToCompletion(sandbox, spec)
            #expect(r.exit.process == .exited(0))
            #expect(sandbox.startCounts == Sandbox.StartCounts(pooled: 0, direct: 1))
            #expect(sandbox.pooledSandboxesReady == 1)
        }
    }

    @Test func aFailedSetupInAPooledStartNamesTheStepAndLeavesNothing() async throws {
        try await withSandbox(poolSize: 1) { sandbox, env in
            try await waitForPool(sandbox, ready: 1)
            let before = Set(env.cgroupDirectories())
            let launcher = try #require(sandbox.parkedLauncherPIDs.first)
            do {
                _ = try sandbox.start(try await busyboxSpec(["/bin/no-such-program"]))
                Issue.record("the start succeeded")
            } catch let error as RunnerError {
                #expect(error.code == .notFound)
                #expect(error.step == "execve")
            }
            #expect(sandbox.startCounts.pooled == 0)
            #expect(await waitUntilGone(launcher), "the launcher that cloned the failed child is reaped")
            // The claimed sandbox's cgroups are gone; the refill makes new ones.
            let used = before.subtracting(env.cgroupDirectories())
            #expect(!used.isEmpty)
            try await waitForPool(sandbox, ready: 1)
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/echo", "still works"]))
            #expect(r.stdout == "still works\n")
            #expect(sandbox.startCounts.pooled == 1)
        }
    }

    @Test func aLauncherKilledWhileParkedOnlyCostsItsSandbox() async throws {
        try await withSandbox(poolSize: 1) { sandbox, _ in
            try await waitForPool(sandbox, ready: 1)
            let launcher = try #require(sandbox.parkedLauncherPIDs.first)
            kill(launcher, SIGKILL)
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/echo", "direct"]))
            #expect(r.stdout == "direct\n")
            #expect(sandbox.startCounts == Sandbox.StartCounts(pooled: 0, direct: 1))
            #expect(await waitUntilGone(launcher))
        }
    }

    @Test func thePoolRefillsBehindClaims() async throws {
        try await withSandbox(poolSize: 2) { sandbox, _ in
            for _ in 0..<3 {
                try await waitForPool(sandbox, ready: 2)
                let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/true"]))
                #expect(r.exit.process == .exited(0))
            }
            #expect(sandbox.startCounts.pooled == 3)
            try await waitForPool(sandbox, ready: 2)
        }
    }

    @Test func shutdownEndsEveryParkedLauncherAndRemovesThePoolsCgroups() async throws {
        let env = TestEnvironment("pool")
        defer { env.cleanUp() }
        let sandbox = try Sandbox(configuration: env.configuration(poolSize: 3))
        try await waitForPool(sandbox, ready: 3)
        let launchers = sandbox.parkedLauncherPIDs
        #expect(launchers.count == 3)
        let c = try sandbox.start(try await busyboxSpec(["/bin/sleep", "3600"]))
        #expect(sandbox.startCounts.pooled == 1)
        await sandbox.shutdown()
        #expect(c.exit != nil)
        // Gone means reaped too: kill(pid, 0) still finds a zombie. (Host.zombieChildren would
        // also count other tests' processes, which run in parallel with this one.)
        for pid in launchers + [c.pid] { #expect(await waitUntilGone(pid), "process \(pid)") }
        #expect(env.cgroupDirectories().isEmpty, "\(env.cgroupDirectories())")
    }

    @Test func aSandboxWithoutAPoolStartsDirectly() async throws {
        try await withSandbox(poolSize: 0) { sandbox, _ in
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/true"]))
            #expect(r.exit.process == .exited(0))
            #expect(sandbox.startCounts == Sandbox.StartCounts(pooled: 0, direct: 1))
            #expect(sandbox.parkedLauncherPIDs.isEmpty)
        }
    }
}
