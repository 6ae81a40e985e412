import RunnerOS
import Sandbox
import TestSupport
import Testing

@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"), .serialized)
struct LimitTests {
    @Test func aProcessAllocatingPastTheMemoryLimitIsReportedOutOfMemory() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(["/bin/probe", "alloc", "256"])
            spec.limits.memoryBytes = 32 << 20
            let r = try await runToCompletion(sandbox, spec)
            #expect(r.exit.outOfMemory)
            #expect(r.exit.process == .exited(137))  // init reports its child's SIGKILL as 128 + 9
            #expect(r.exit.shellStatus == 137)
            #expect(!r.stdout.contains("allocated"))
        }
    }

    @Test func aProcessWithinTheMemoryLimitIsNotOutOfMemory() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(["/bin/probe", "alloc", "8"])
            spec.limits.memoryBytes = 64 << 20
            let r = try await runToCompletion(sandbox, spec)
            #expect(!r.exit.outOfMemory)
            #expect(r.exit.process == .exited(0))
            #expect(r.stdout == "allocated 8 MiB\n")
        }
    }

    @Test func aProcessKilledBySignal9WithoutOOMIsNotCalledOutOfMemory() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(["/bin/sleep", "30"])
            spec.limits.memoryBytes = 64 << 20
            let c = try sandbox.start(spec)
            try c.kill()
            let exit = await c.wait()
            #expect(exit.process == .signaled(9))
            #expect(!exit.outOfMemory)
            try await c.close()
        }
    }

    @Test func aForkBombStopsAtThePidsLimit() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(["/bin/probe", "forks", "200"])
            spec.limits.pids = 20
            let r = try await runToCompletion(sandbox, spec)
            let fields = Dictionary(
                uniqueKeysWithValues: r.stdout.trimmed.split(separator: " ").compactMap { kv -> (String, Int)? in
                    let p = kv.split(separator: "=")
                    return p.count == 2 ? (String(p[0]), Int(p[1]) ?? -1) : nil
                })
            #expect((fields["forked"] ?? 99) < 20, "\(r.stdout)")
            #expect((fields["failed"] ?? 0) > 100, "\(r.stdout)")
        }
    }

    /// 200 millicores = 20 ms per 100 ms period; measured with the cgroup's own counters:
    /// CPU time used over the periods that elapsed while it was runnable. The quota is a
    /// ceiling, so only the ceiling is exact: on a busy machine the burner may get less than
    /// its 20 ms in many periods (CI saw 8 of 30 periods throttled), and those periods are not
    /// throttled. At least one period reaching the quota shows the quota acted at all.
    @Test func aCPUBurnerUnder200MillicoresIsHeldToAFifthOfACPU() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(["/bin/probe", "burn", "3"])
            spec.limits.cpuMillicores = 200
            let c = try sandbox.start(spec)
            _ = await c.wait()
            let s = try c.stats()
            try await c.close()
            #expect(s.cpuPeriods >= 20, "periods: \(s)")
            let share = Double(s.cpuUsageNanos) / (Double(s.cpuPeriods) * 100_000_000)
            #expect(share > 0.05 && share < 0.28, "share of one CPU: \(share), \(s)")
            #expect(s.cpuThrottledPeriods >= 1, "no period reached the quota: \(s)")
        }
    }

    @Test func aContainerHasFnsRlimitsByDefault() async throws {
        try await withSandbox { sandbox, _ in
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/cat", "/proc/self/limits"]))
            let limits = r.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
            #expect(limits.contains("Max open files 350 350 files"), "\(r.stdout)")
            #expect(limits.contains("Max locked memory 65536 65536 bytes"), "\(r.stdout)")
            #expect(limits.contains("Max pending signals 5000 5000 signals"), "\(r.stdout)")
            #expect(limits.contains("Max msgqueue size 819200 819200 bytes"), "\(r.stdout)")
        }
    }
}
