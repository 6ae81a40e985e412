import NodeNetwork
import RunnerOS
import Sandbox
import TestSupport
import Testing

/// The function bridge on the real kernel, inside namespaces each test makes (NetworkLab).
@Suite(.enabled(if: Host.canRunContainers && NetworkLab.isAvailable, "needs root, cgroups, ip and nsenter"))
struct BridgeNetworkTests {
    /// An HTTP GET through busybox nc. The walls answer with resets, so a refusal is immediate;
    /// the limit (on the name lookup and connect) only ends a fetch nobody answers.
    static let fetch = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 "

    func bridgeSpec(_ script: String) async throws -> ContainerSpec {
        var spec = try await busyboxSpec(["/bin/sh", "-c", script])
        spec.network = .bridge
        return spec
    }

    @Test func aFunctionOnTheBridgeReachesARemoteHostThroughTheNodesNAT() async throws {
        try await withBridgeSandbox("nat") { sandbox, lab, _ in
            try await lab.startRemoteServices()
            let r = try await runToCompletion(sandbox, try await bridgeSpec(Self.fetch + "\(NetworkLab.remoteAddress) \(NetworkLab.httpPort)"))
            #expect(r.stdout.contains("from \(NetworkLab.nodeUplinkAddress)"), "stdout: \(r.stdout) stderr: \(r.stderr)")
            #expect(r.exit.process == .exited(0))
        }
    }

    @Test func aFunctionResolvesNamesThroughTheNodesNameServerAndSeesItsOwnName() async throws {
        try await withBridgeSandbox("dns") { sandbox, lab, _ in
            try await lab.startRemoteServices()
            let script = "cat /etc/resolv.conf; cat /etc/hosts; hostname; nslookup svc.test; "
                + Self.fetch + "svc.test \(NetworkLab.httpPort)"
            let r = try await runToCompletion(sandbox, try await bridgeSpec(script))
            #expect(r.stdout.contains("nameserver \(NetworkLab.remoteAddress)"), "\(r.stdout)")
            #expect(r.stdout.contains("search test"))
            #expect(!r.stdout.contains("from the image"), "the image's name files are covered: \(r.stdout)")
            #expect(r.stdout.contains("Address: 192.0.2.1") || r.stdout.contains("Address 1: 192.0.2.1"), "\(r.stdout) \(r.stderr)")
            #expect(r.stdout.contains("from \(NetworkLab.nodeUplinkAddress)"), "\(r.stdout) \(r.stderr)")
            let hostname = try await Shell.output("hostname").trimmed
            #expect(r.stdout.contains("\t\(hostname)\n"), "hosts names the container: \(r.stdout)")
        }
    }

    @Test func theImageOutsideItsNameFilesIsUntouched() async throws {
        try await withBridgeSandbox("names") { sandbox, _, _ in
            let r = try await runToCompletion(
                sandbox, try await bridgeSpec("grep -c ' /etc/' /proc/self/mountinfo; cat /etc/not-executable; touch /etc/hosts"))
            #expect(r.stdout.hasPrefix("2\n"), "two mounts under /etc: \(r.stdout)")
            #expect(r.stdout.contains("echo no"))
            #expect(r.stderr.contains("Read-only file system"), "\(r.stderr)")
        }
    }

    /// What the walls are tried against: the remote's services, a node service on port 9090
    /// (all addresses), and a neighbour function listening on 7070 (waited for, so that a
    /// refusal is the walls' doing).
    func startTargets(_ sandbox: Sandbox, _ lab: NetworkLab) async throws -> (Container, IPv4Address) {
        try await lab.startRemoteServices()
        try await lab.startNodeService(port: 9090)
        var neighbour = try await bridgeSpec("nc -l -p 7070 -e echo neighbour")
        neighbour.uid = 0
        let other = try sandbox.start(neighbour)
        let address = try #require(other.network?.address)
        try await NetworkLab.waitForListener(pid: other.pid, port: 7070)
        return (other, address)
    }

    @Test func theNodeAnotherFunctionAndLinkLocalAddressesAreRefusedByDefault() async throws {
        try await withBridgeSandbox("walls") { sandbox, lab, _ in
            let (other, otherAddress) = try await startTargets(sandbox, lab)
            defer { Task { try? await other.close() } }
            let gateway = FunctionNetworkConfiguration.defaultSubnet.gateway
            let script = [
                "\(gateway) 9090", "\(NetworkLab.nodeUplinkAddress) 9090", "\(otherAddress) 7070", "\(NetworkLab.metadataAddress) \(NetworkLab.httpPort)",
                "\(NetworkLab.remoteAddress) \(NetworkLab.httpPort)",
            ].map { target in "echo \"== \(target)\"; " + Self.fetch + target + " 2>&1" }.joined(separator: "; ")
            let r = try await runToCompletion(sandbox, try await bridgeSpec(script))
            let answers = Self.answers(r.stdout)
            // The node and link-local addresses refuse at once (a reset); a neighbour on the
            // bridge is never even found (isolated ports see no ARP of each other).
            for refused in ["\(gateway) 9090", "\(NetworkLab.nodeUplinkAddress) 9090", "\(NetworkLab.metadataAddress) \(NetworkLab.httpPort)"] {
                #expect(answers[refused]?.contains("Connection refused") == true, "\(refused): \(r.stdout)")
            }
            let neighbourAnswer = answers["\(otherAddress) 7070"] ?? ""
            #expect(!neighbourAnswer.contains("neighbour") && neighbourAnswer.contains("nc:"), "\(r.stdout)")
            #expect((answers["\(NetworkLab.remoteAddress) \(NetworkLab.httpPort)"] ?? "").contains("from"), "\(r.stdout)")
        }
    }

    @Test(arguments: ["node", "functions", "metadata"])
    func eachOptInOpensOnlyItsOwnHole(_ hole: String) async throws {
        try await withBridgeSandbox("hole-\(hole)", configure: { try! $0.allow(hole) }) { sandbox, lab, _ in
            let (other, otherAddress) = try await startTargets(sandbox, lab)
            defer { Task { try? await other.close() } }
            let gateway = FunctionNetworkConfiguration.defaultSubnet.gateway
            let targets = ["node": "\(gateway) 9090", "functions": "\(otherAddress) 7070", "metadata": "\(NetworkLab.metadataAddress) \(NetworkLab.httpPort)"]
            let script = targets.values.sorted().map { "echo \"== \($0)\"; " + Self.fetch + $0 + " 2>&1" }.joined(separator: "; ")
            let r = try await runToCompletion(sandbox, try await bridgeSpec(script))
            let answers = Self.answers(r.stdout)
            let expected = ["node": "node service", "functions": "neighbour", "metadata": "from"]
            for (name, target) in targets {
                let reached = (answers[target] ?? "").contains(expected[name]!)
                #expect(reached == (name == hole), "\(name) via \(target) with \(hole) open: \(r.stdout)")
            }
        }
    }

    @Test func whatAContainerMovedIsCountedAndStillReadableAfterItExits() async throws {
        try await withBridgeSandbox("bytes") { sandbox, lab, _ in
            try await lab.startRemoteServices()
            let container = try sandbox.start(try await bridgeSpec(Self.fetch + "\(NetworkLab.remoteAddress) \(NetworkLab.httpPort)"))
            let early = container.networkCounters()
            #expect(early != nil)
            _ = await container.wait()
            let counters = try #require(container.networkCounters(), "counters after the exit")
            #expect(counters.sentBytes >= 18 && counters.receivedBytes >= 60, "\(counters)")
            try await container.close()
            #expect(container.networkCounters() == nil)
        }
    }

    /// The counters are read by the host link's index: once someone else deletes that link, a
    /// live container has no counters (nil, not an error and not another link's bytes), and
    /// its close still cleans up.
    @Test func aContainerWhoseHostLinkWasDeletedUnderItHasNoCounters() async throws {
        try await withBridgeSandbox("gone") { sandbox, lab, _ in
            let container = try sandbox.start(try await bridgeSpec("sleep 30"))
            let link = try #require(container.network?.hostLink)
            #expect(container.networkCounters() != nil)
            _ = try await lab.nodeIP("link del \(link)")
            #expect(container.networkCounters() == nil, "the link \(link) is gone")
            try await container.close()
            #expect(try await !lab.nodeIP("link show").contains(link))
        }
    }

    @Test func runnersSharingABridgeKeepTheStrictestWallsAndTheLastOneRemovesIt() async throws {
        try await withBridgeSandbox("shared") { strict, lab, env in
            try await lab.startRemoteServices()
            var config = env.configuration(poolSize: 0)
            config.functionNetwork = strict.functionNetwork!.configuration
            config.functionNetwork!.allowMetadata = true
            let lenient = try Sandbox(configuration: config)
            let metadata = Self.fetch + "\(NetworkLab.metadataAddress) \(NetworkLab.httpPort) 2>&1"
            // A lenient runner on the same bridge opens no hole for the strict one's functions,
            // nor (the strictest walls hold for all) for its own.
            #expect(try await runToCompletion(strict, try await bridgeSpec(metadata)).stdout.contains("refused"))
            #expect(try await runToCompletion(lenient, try await bridgeSpec(metadata)).stdout.contains("refused"))
            await lenient.shutdown()
            #expect(try await lab.nodeIP("link show").contains("fnrunner0"), "the bridge stays while a runner uses it")
            let r = try await runToCompletion(strict, try await bridgeSpec(metadata + "; " + Self.fetch + "\(NetworkLab.remoteAddress) \(NetworkLab.httpPort)"))
            #expect(r.stdout.contains("refused") && r.stdout.contains("from \(NetworkLab.nodeUplinkAddress)"), "walls and NAT stay: \(r.stdout)")
            await strict.shutdown()
            #expect(!(try await lab.nodeIP("link show")).contains("fnrunner0"))
            #expect(!(try await lab.nodeRuleset()).contains("fnrunner"))
        }
    }

    @Test func noneStillHasOnlyLoopback() async throws {
        try await withBridgeSandbox("none") { sandbox, _, _ in
            var spec = try await busyboxSpec(["/bin/sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1"])
            spec.network = .none
            let r = try await runToCompletion(sandbox, spec)
            #expect(r.stdout.split(separator: "\n").map(\.trimmed) == ["lo"], "\(r.stdout)")
        }
    }

    @Test func aBridgeStartWithoutAConfiguredBridgeIsRefusedByName() async throws {
        try await withSandbox { sandbox, _ in
            let spec = try await bridgeSpec("true")
            #expect {
                _ = try sandbox.start(spec)
            } throws: { ($0 as? RunnerError)?.message.contains("bridge") == true }
        }
    }

    @Test func aPooledSandboxIsOnTheBridgeBeforeItsContainerStarts() async throws {
        try await withBridgeSandbox("pooled", poolSize: 2) { sandbox, lab, _ in
            try await lab.startRemoteServices()
            try await waitUntil { sandbox.pooledSandboxesReady == 2 }
            #expect(sandbox.functionNetwork?.leasedAddresses.count == 2, "the pool's namespaces hold their addresses")
            let r = try await runToCompletion(sandbox, try await bridgeSpec(Self.fetch + "\(NetworkLab.remoteAddress) \(NetworkLab.httpPort)"))
            #expect(r.stdout.contains("from \(NetworkLab.nodeUplinkAddress)"), "\(r.stdout) \(r.stderr)")
            #expect(sandbox.startCounts.pooled == 1)
            var none = try await busyboxSpec(["/bin/true"])
            none.network = .none
            _ = try await runToCompletion(sandbox, none)
            #expect(sandbox.startCounts.direct == 1, "a none start does not take a bridge sandbox")
        }
    }

    /// Left to itself a bridge takes the lowest address of its ports and changes it as they
    /// come and go: a container that resolved the gateway a moment before then sends into the
    /// void (one name lookup in ten took 5 or 10 s in a serve test starting a container a call).
    @Test func theBridgeKeepsItsHardwareAddressWhenAPortWithALowerOneJoinsAndLeaves() async throws {
        try await withBridgeSandbox("mac") { sandbox, lab, _ in
            try await lab.startRemoteServices()
            func bridgeAddress() async throws -> String {
                let line = try await lab.nodeIP("-o link show fnrunner0")
                return try #require(line.split(separator: " ").drop { $0 != "link/ether" }.dropFirst().first.map(String.init), "\(line)")
            }
            let before = try await bridgeAddress()
            let first = try #require(UInt8(before.prefix(2), radix: 16), "\(before)")
            #expect(first & 0x03 == 0x02, "unicast and locally administered: \(before)")
            // The lowest address there is, on a port of the test's own.
            _ = try await lab.nodeIP("link add fnt-low type veth peer name fnt-low-peer")
            _ = try await lab.nodeIP("link set fnt-low address 00:00:00:00:00:01 master fnrunner0 up")
            #expect(try await bridgeAddress() == before)
            let r = try await runToCompletion(sandbox, try await bridgeSpec(Self.fetch + "svc.test \(NetworkLab.httpPort)"))
            #expect(r.stdout.contains("from \(NetworkLab.nodeUplinkAddress)"), "\(r.stdout) \(r.stderr)")
            _ = try await lab.nodeIP("link del fnt-low")
            #expect(try await bridgeAddress() == before)
        }
    }

    @Test func twoHundredConcurrentStartsGetTwoHundredDifferentAddresses() async throws {
        // Exclusive, and on threads of their own: a burst like this must not hold the test
        // process's cooperative threads (timing-sensitive tests of other suites share them).
        try await withBridgeSandbox("many", exclusive: true) { sandbox, lab, _ in
            let spec = try await bridgeSpec("sleep 60")
            let containers = try await withThrowingTaskGroup(of: Container.self) { group in
                for _ in 0..<200 { group.addTask { try await BlockingThread.run { () throws(RunnerError) in try sandbox.start(spec) } } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let addresses = containers.compactMap { $0.network?.address }
            #expect(addresses.count == 200 && Set(addresses).count == 200, "\(addresses.count) addresses, \(Set(addresses).count) distinct")
            #expect(try await lab.nodeIP("-o link show").split(separator: "\n").filter { $0.contains(": fv") }.count == 200)
            for c in containers { try await c.close() }
            sandbox.functionNetwork?.settle()
            #expect(!(try await lab.nodeIP("-o link show")).contains(": fv"))
            #expect(sandbox.functionNetwork?.leasedAddresses.isEmpty == true)
        }
    }

    @Test func threeHundredStartsAndStopsLeaveNoLinkAddressRouteOrRule() async throws {
        try await withBridgeSandbox("cycles", exclusive: true) { sandbox, lab, env in
            let spec = try await bridgeSpec("true")
            for _ in 0..<300 {
                let c = try await BlockingThread.run { () throws(RunnerError) in try sandbox.start(spec) }
                _ = await c.wait()
                try await c.close()
            }
            sandbox.functionNetwork?.settle()
            #expect(!(try await lab.nodeIP("-o link show")).contains(": fv"))
            #expect(sandbox.functionNetwork?.leasedAddresses.isEmpty == true)
            #expect((try? FileSystem.list(env.stateDirectory + "/instances/\(sandbox.instanceID)/network/hosts"))?.isEmpty == true)
            await sandbox.shutdown()  // (the helper's own shutdown after this does nothing)
            let links = try await lab.nodeIP("-o link show")
            #expect(!links.contains("fnrunner0") && !links.contains(": fv"), "\(links)")
            let addresses = try await lab.nodeIP("-o addr show")
            let routes = try await lab.nodeIP("route show")
            let ruleset = try await lab.nodeRuleset()
            #expect(!addresses.contains("10.89."), "\(addresses)")
            #expect(!routes.contains("10.89."), "\(routes)")
            #expect(!ruleset.contains("fnrunner"), "\(ruleset)")
        }
    }

    /// The text each "== target" section of a probe script printed.
    static func answers(_ output: String) -> [String: String] {
        var result: [String: String] = [:]
        var current: String?
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("== ") {
                current = String(line.dropFirst(3))
                result[current!] = ""
            } else if let c = current {
                result[c, default: ""] += line + "\n"
            }
        }
        return result
    }
}
