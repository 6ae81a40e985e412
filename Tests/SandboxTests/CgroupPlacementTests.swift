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
            for _ in 0..<2500 where poolSize > 0 && !sandbox.poolIsSettled { usleep(2000) }
            let r = try await runToCompletion(sandbox, try busyboxSpec(["/bin/cat", "/proc/self/cgroup"]))
            #expect(r.exit.process == .exited(0), "\(r.stderr)")
            // "ID:controllers:path"; "0::path" is the v2 tree.
            var paths: [String: String] = [:]
            for line in r.stdout.split(separator: "\n") {
                let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard fields.count == 3 else { continue }
                let controllers = fields[1].isEmpty ? ["v2"] : fields[1].split(separator: ",").map(String.init)
                for c in controllers where ["v2", "memory", "pids", "cpu"].contains(c) { paths[c] = String(fields[2]) }
            }
            let v2Only = FileSystem.exists("/sys/fs/cgroup/cgroup.controllers")
            let expected = v2Only ? ["v2"] : ["v2", "memory", "pids", "cpu"]
            #expect(Set(paths.keys) == Set(expected), "\(r.stdout)")
            let own = try #require(paths["v2"])
            #expect(own.hasPrefix("/\(env.cgroupRoot)/") && own.split(separator: "/").count == 3, "\(r.stdout)")
            #expect(paths.values.allSatisfy { $0 == own }, "one cgroup in every hierarchy: \(r.stdout)")
        }
    }
}
