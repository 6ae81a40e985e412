import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where a container's process runs: in its own cgroup in every hierarchy the runner uses. A
/// child cloned without the pool joins its v1 cgroups itself, as its first step (a thread that
/// moves itself is spared the kernel's RCU grace period); a pooled one inherits them from its
/// launcher, and the v2 cgroup comes from CLONE_INTO_CGROUP either way.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"), .serialized)
struct CgroupPlacementTests {
    @Test(arguments: [0, 1])
    func aContainerRunsInItsOwnCgroupInEveryHierarchy(poolSize: Int) async throws {
        try await withSandbox(poolSize: poolSize) { sandbox, env in
            if poolSize > 0 { try await waitUntil { sandbox.poolIsSettled } }
            let before = sandbox.startCounts
            let r = try await runToCompletion(sandbox, try busyboxSpec(["/bin/cat", "/proc/self/cgroup"]))
            #expect(r.exit.process == .exited(0), "\(r.stderr)")
            let after = sandbox.startCounts
            #expect(poolSize > 0 ? after.pooled == before.pooled + 1 : after.direct == before.direct + 1, "\(after)")
            // "ID:controllers:path"; "0::path" is the v2 tree.
            var paths: [String: String] = [:]
            for line in r.stdout.split(separator: "\n") {
                let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard fields.count == 3 else { continue }
                let controllers = fields[1].isEmpty ? ["v2"] : fields[1].split(separator: ",").map(String.init)
                for c in controllers { paths[c] = String(fields[2]) }
            }
            let layout = sandbox.driver.layout
            let used = layout.v1Controllers + (layout.v2Mount == nil ? [] : ["v2"])
            #expect(!used.isEmpty)
            for c in used { #expect(paths[c] != nil, "\(c) in \(r.stdout)") }
            let first = try #require(used.first)
            let own = try #require(paths[first])
            #expect(own.hasPrefix("/\(env.cgroupRoot)/") && own.split(separator: "/").count == 3, "\(r.stdout)")
            #expect(used.allSatisfy { paths[$0] == own }, "one cgroup in every hierarchy the runner uses: \(r.stdout)")
        }
    }
}
