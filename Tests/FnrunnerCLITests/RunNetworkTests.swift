import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner run --network bridge` with the bridge in a namespace the test made.
@Suite(.enabled(if: Host.canRunContainers && NetworkLab.isAvailable, "needs root, cgroups, ip and nsenter"))
struct RunNetworkTests {
    @Test func runOnTheBridgeFetchesThroughTheNodeAndLeavesNothingBehind() async throws {
        try await withSharedGate {
            let lab = try await NetworkLab("clinet", uplinkMTU: 1400)
            defer { lab.cleanUp() }
            let env = TestEnvironment("clinet")
            defer { env.cleanUp() }
            try await lab.startRemoteServices()
            try FileSystem.makeDirectories(env.stateDirectory)
            let resolv = env.stateDirectory + "/node-resolv.conf"
            try lab.writeResolvConf(at: resolv)
            let script = "cat /sys/class/net/eth0/mtu; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 svc.test \(NetworkLab.httpPort)"
            let p = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--network", "bridge",
                 "--rootfs", try await Fixtures.busybox(), "--", "/bin/sh", "-c", script],
                environment: [
                    "FN_FUNCTION_NETWORK": "bridge", "FN_FUNCTION_NODE_NETNS": lab.nodePath, "FN_FUNCTION_RESOLV_CONF": resolv,
                ])
            #expect(await p.exit() == 0, "\(p.stderr)")
            #expect(p.stdout.hasPrefix("1400\n"), "the uplink's MTU: \(p.stdout)")
            #expect(p.stdout.contains("from \(NetworkLab.nodeUplinkAddress)"), "\(p.stdout) \(p.stderr)")
            let links = try await lab.nodeIP("-o link show")
            #expect(!links.contains("fnrunner0") && !links.contains(": fv"), "\(links)")
            #expect(!(try await lab.nodeRuleset()).contains("fnrunner"))
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func anUnknownNetworkIsRefusedByName() async throws {
        try await withSharedGate {
            let env = TestEnvironment("clinet")
            defer { env.cleanUp() }
            let p = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--network", "internet",
                 "--rootfs", try await Fixtures.busybox(), "--", "/bin/true"])
            #expect(await p.exit() == 125)
            #expect(p.stderr.contains("--network \"internet\" is not one of none, bridge, host"), "\(p.stderr)")
        }
    }
}
