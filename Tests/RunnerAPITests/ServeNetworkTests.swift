import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner serve` with its function bridge in a namespace the test made (FN_FUNCTION_NODE_NETNS):
/// real functions reach a remote host through the node's NAT, and nothing outlives the runner.
@Suite(
    .enabled(if: Host.canRunContainers && NetworkLab.isAvailable, "needs root, cgroups, ip and nsenter"), .serialized)
struct ServeNetworkTests {
    func bridgeEnvironment(_ lab: NetworkLab, _ env: TestEnvironment, pool: Int = 0) throws -> [String: String] {
        let resolv = env.stateDirectory + "-resolv.conf"
        try lab.writeResolvConf(at: resolv)
        return [
            "FN_FUNCTION_NETWORK": "bridge", "FN_FUNCTION_NODE_NETNS": lab.nodePath, "FN_FUNCTION_RESOLV_CONF": resolv,
            "FN_SANDBOX_POOL_SIZE": String(pool),
        ]
    }

    @Test func aDefaultFormatFunctionAndAPythonFDKFunctionFetchThroughTheNodesNAT() async throws {
        try await withSharedGate {
            let lab = try await NetworkLab("serve")
            defer { lab.cleanUp() }
            let env = TestEnvironment("servenet")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            try await lab.startRemoteServices()
            try await ServeHarness.importHelloStream(tag: "sh", into: data)
            let imported = try Subprocess.fnrunner(
                ["import", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, try await FDKImage.layout(),
                 "--name", "fn-test/pyfdk:pyfdk-fetch"])
            #expect(await imported.exit() == 0, "\(imported.stderr)")
            let (server, c) = try await ServeHarness.start(
                env, data: data, port: try Host.freeLoopbackPort(), environment: try bridgeEnvironment(lab, env, pool: 2))
            defer { ServeHarness.stopBlocking(server, env) }

            // On a failure the answer says why: nc's own words, its status and what the
            // container saw of its network.
            let script = """
                out=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 svc.test \(NetworkLab.httpPort) 2>&1); rc=$?; echo "$out"
                [ $rc = 0 ] || { echo "nc exited $rc"; cat /etc/resolv.conf /proc/net/arp /proc/net/route /proc/net/dev; }
                """
            let (appID, shFn) = try await ServeHarness.deployApp(
                c, app: "net", fn: "nc", image: "fn-test/hello-stream:sh", fnFields: ["format": "default", "config": ["SCRIPT": script]])
            let nc = try await c.send("POST", "/invoke/\(shFn)")
            #expect(nc.status == 200 && nc.text.contains("from \(NetworkLab.nodeUplinkAddress)"), "\(nc.status) \(nc.text)")
            // The call's record and /metrics count what it moved: at least the request it sent
            // and the answer it got.
            let calls = try await c.send("GET", "/v2/fns/\(shFn)/calls")
            let stats = ((calls.json["items"] as? [[String: Any]])?.first?["stats"] as? [String: Any]) ?? [:]
            let rx = (stats["net_rx_bytes"] as? Int) ?? 0
            let tx = (stats["net_tx_bytes"] as? Int) ?? 0
            #expect(rx >= 60 && tx >= 18, "call stats: \(stats)")
            let metrics = try await c.send("GET", "/metrics").text
            #expect(metrics.contains("fn_network_received_bytes_total{fn_id=\"\(shFn)\"} \(rx)"), "\(metrics.prefix(600))")
            #expect(metrics.contains("fn_network_sent_bytes_total{fn_id=\"\(shFn)\"} \(tx)"))

            let py = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "py", "image": "fn-test/pyfdk:pyfdk-fetch", "memory": 128])
            let pyFn = try #require(py.json["id"] as? String, "\(py.text)")
            let fetched = try await c.send("POST", "/invoke/\(pyFn)", body: Array("http://svc.test:\(NetworkLab.httpPort)/".utf8))
            #expect(fetched.status == 200 && fetched.text.contains("from \(NetworkLab.nodeUplinkAddress)"), "\(fetched.status) \(fetched.text)")
        }
    }

    @Test func aFunctionMayAskForNoNetworkButNotForTheHostsUnlessTheNodeAllowsIt() async throws {
        try await withSharedGate {
            let lab = try await NetworkLab("servepolicy")
            defer { lab.cleanUp() }
            let env = TestEnvironment("servepolicy")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            try await ServeHarness.importHelloStream(tag: "sh", into: data)
            let (server, c) = try await ServeHarness.start(
                env, data: data, port: try Host.freeLoopbackPort(), environment: try bridgeEnvironment(lab, env))
            defer { ServeHarness.stopBlocking(server, env) }
            let key = "fnrunner.io/network"
            let links = "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '"
            let (appID, bridged) = try await ServeHarness.deployApp(
                c, app: "policy", fn: "bridged", image: "fn-test/hello-stream:sh", fnFields: ["format": "default", "config": ["SCRIPT": links]])
            let lonely = try await c.json(
                "POST", "/v2/fns",
                ["app_id": appID, "name": "lonely", "image": "fn-test/hello-stream:sh", "format": "default", "config": ["SCRIPT": links],
                 "annotations": [key: "none"]])
            let lonelyID = try #require(lonely.json["id"] as? String, "\(lonely.text)")
            #expect(try await c.send("POST", "/invoke/\(bridged)").text == "eth0 lo ")
            #expect(try await c.send("POST", "/invoke/\(lonelyID)").text == "lo ")

            let host = try await c.json(
                "POST", "/v2/fns", ["app_id": appID, "name": "hosted", "image": "fn-test/hello-stream:sh", "annotations": [key: "host"]])
            #expect(host.status == 400 && host.message?.contains(key) == true, "\(host.status) \(host.text)")
            let odd = try await c.json("PUT", "/v2/apps/\(appID)", ["annotations": [key: "internet"]])
            #expect(odd.status == 400 && odd.message?.contains("bridge, none") == true, "\(odd.status) \(odd.text)")
        }
    }

    @Test func afterAKillOfTheRunnerTheNextStartLeavesNothingOfTheOldInstance() async throws {
        try await withSharedGate {
            let lab = try await NetworkLab("servekill")
            defer { lab.cleanUp() }
            let env = TestEnvironment("servekill")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            try await ServeHarness.importHelloStream(tag: "1", into: data)
            let environment = try bridgeEnvironment(lab, env, pool: 2)
            let port = try Host.freeLoopbackPort()
            var (server, c) = try await ServeHarness.start(env, data: data, port: port, environment: environment)
            let fn = try await ServeHarness.deploy(c, app: "kill", fn: "hello", memory: 32)
            #expect(try await c.send("POST", "/invoke/\(fn)").status == 200)
            let leasesDirectory = env.stateDirectory + "/network/fnrunner0/leases"
            func leases() -> [String] { ((try? FileSystem.list(leasesDirectory)) ?? []).filter { !$0.hasPrefix(".") } }
            try await waitUntil { leases().count >= 3 }  // the hot container and two pooled
            #expect(try await lab.nodeIP("link show").contains("fv"))
            server.signal(SIGKILL)
            _ = await server.exit()
            // Its parked launchers die with it (parent-death signal) and hold its store lock
            // until then; under load that takes a moment.
            try await waitUntil(timeoutMillis: 30_000) { ServeHarness.processes(of: env).isEmpty }

            (server, c) = try await ServeHarness.start(env, data: data, port: port, environment: environment.merging(["FN_SANDBOX_POOL_SIZE": "0"]) { $1 })
            #expect(leases().isEmpty, "the old instance's leases went")
            let links = try await lab.nodeIP("link show")
            #expect(!links.contains(" fv"), "and its veths: \(links)")
            #expect(try await c.send("POST", "/invoke/\(fn)").status == 200)
            await ServeHarness.stop(server, env)
            let linksAfter = try await lab.nodeIP("link show")
            let ruleset = try await lab.nodeRuleset()
            #expect(!linksAfter.contains("fnrunner0"), "the bridge it made went: \(linksAfter)")
            #expect(!ruleset.contains("fnrunner"), "and its rules: \(ruleset)")
            #expect(leases().isEmpty)
            #expect(((try? FileSystem.list(leasesDirectory + "/.owners")) ?? []).isEmpty, "and every owner record")
        }
    }

    @Test func aSubnetTheNodeAlreadyRoutesOrABadSettingStopsServeByNameAndLeavesNothing() async throws {
        try await withSharedGate {
            let lab = try await NetworkLab("serveclash")
            defer { lab.cleanUp() }
            let env = TestEnvironment("serveclash")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            var base = try bridgeEnvironment(lab, env)
            base["FN_PORT"] = String(try Host.freeLoopbackPort())
            let cases: [(String, String, String)] = [
                ("FN_FUNCTION_SUBNET", "192.0.2.0/25", "overlaps the node's route to 192.0.2.0/24 (dev up0)"),
                ("FN_FUNCTION_SUBNET", "10.89.0.7/16", "did you mean 10.89.0.0/16"),
                ("FN_FUNCTION_NETWORK", "internet", "FN_FUNCTION_NETWORK \"internet\" is not one of none, bridge, host"),
                ("FN_FUNCTION_NETWORK_ALLOW", "node,everything", "\"everything\""),
                ("FN_FUNCTION_BRIDGE", "a-bridge-name-too-long", "must be 1-15"),
            ]
            for (name, value, message) in cases {
                let server = try Subprocess.fnrunner(
                    ["serve", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot],
                    environment: base.merging([name: value]) { $1 })
                #expect(await server.exit() != 0, "\(name)=\(value) must stop serve")
                #expect(server.stderr.contains(message), "\(name)=\(value): \(server.stderr)")
                let links = try await lab.nodeIP("link show")
                #expect(!links.contains("fnrunner0"), "no bridge is left: \(links)")
                #expect(!(try await lab.nodeRuleset()).contains("fnrunner"), "no rules are left")
                #expect(env.cgroupDirectories().isEmpty)
            }
        }
    }
}
