import RunnerOS
import Sandbox
import TestSupport
import Testing

/// Where a container's process runs: in its own cgroup in every hierarchy the runner uses. A
/// child cloned without the pool joins its v1 cgroups itself, as its first step (a thread that
/// moves itself is spared the kernel's RCU grace period); a pooled one inherits them from its
/// launcher, and the v2 cgroup comes from CLONE_INTO_CGROUP either way.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"), .serialized)
struct CgroupPlacementTests {
    @Test(arguments: [0, 1])
    func aContainerRunsInItsOwnCgroupInEveryHierarchy(poolSize: Int) async throws {
        try await withSandbox(poolSize: poolSize) { sandbox, _ in
            if poolSize > 0 { try await waitUntil { sandbox.poolIsSettled } }
            let before = sandbox.startCounts
            let c = try sandbox.start(try await busyboxSpec(["/bin/sleep", "3600"]))
            let after = sandbox.startCounts
            #expect(poolSize > 0 ? after.pooled == before.pooled + 1 : after.direct == before.direct + 1, "\(after)")
            let places = try cgroupMembership(c.pid)
            try c.kill()
            _ = await c.wait()
            try await c.close()
            let layout = sandbox.driver.layout
            let used = layout.v1Controllers + (layout.v2Mount == nil ? [] : [""])
            #expect(!used.isEmpty)
            for controller in used {
                #expect(places[controller] == "/" + c.cgroup.relativePath, "\(controller.isEmpty ? "v2" : controller): \(places)")
            }
        }
    }
}
