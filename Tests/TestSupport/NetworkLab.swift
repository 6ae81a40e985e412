import NodeNetwork
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Network namespaces made for one test, so that nothing touches the machine's own network:
/// `node` (where a runner's bridge goes) and `remote` (a host beyond the node's uplink), joined
/// by a veth pair, node 192.0.2.2/24 and remote 192.0.2.1/24 (TEST-NET-1), with the node's
/// default route through remote. Remote also answers on 169.254.169.254 (a stand-in for a cloud
/// metadata service), routed from the node. Removed again by `cleanUp`, also after a failure.
public final class NetworkLab: @unchecked Sendable {
    public let node: String
    public let remote: String
    public static let remoteAddress = "192.0.2.1"
    public static let nodeUplinkAddress = "192.0.2.2"
    public static let metadataAddress = "169.254.169.254"
    public static let httpPort = 8080
    private var processes: [Subprocess] = []
    /// Files the lab wrote for a test, removed with the lab.
    private var files: [String] = []

    public var nodePath: String { "/run/netns/" + node }
    public var remotePath: String { "/run/netns/" + remote }

    /// Whether this host can make network namespaces and load nftables rules in them.
    public static var isAvailable: Bool {
        Host.isRoot && ["/usr/sbin/ip", "/sbin/ip", "/bin/ip"].contains(where: FileSystem.exists)
            && ["/usr/bin/nsenter", "/bin/nsenter"].contains(where: FileSystem.exists)
    }

    /// `uplinkMTU`: the MTU of the node's uplink (what a bridge without a configured MTU takes).
    public init(_ label: String, uplinkMTU: Int = 1500) async throws {
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        node = "fnt-\(label)-n-\(tag)"
        remote = "fnt-\(label)-r-\(tag)"
        do {
            try await Shell.run("ip netns add \(node) && ip netns add \(remote)")
            try await Shell.run(
                """
                ip -n \(node) link set lo up && ip -n \(remote) link set lo up && \
                ip -n \(node) link add up0 type veth peer name down0 netns \(remote) && \
                ip -n \(node) link set up0 mtu \(uplinkMTU) && ip -n \(remote) link set down0 mtu \(uplinkMTU) && \
                ip -n \(node) addr add \(Self.nodeUplinkAddress)/24 dev up0 && ip -n \(node) link set up0 up && \
                ip -n \(remote) addr add \(Self.remoteAddress)/24 dev down0 && ip -n \(remote) link set down0 up && \
                ip -n \(node) route add default via \(Self.remoteAddress) && \
                ip -n \(remote) addr add \(Self.metadataAddress)/32 dev lo && \
                ip -n \(node) route add \(Self.metadataAddress)/32 via \(Self.remoteAddress)
                """)
        } catch {
            cleanUp()
            throw error
        }
    }

    /// Starts the remote's HTTP and DNS responders (Tests/Fixtures/remote_services.py) and
    /// waits until they listen.
    public func startRemoteServices() async throws {
        let script = Fixtures.packageRoot + "/Tests/Fixtures/remote_services.py"
        let p = try Subprocess(["/usr/bin/nsenter", "--net=" + remotePath, "python3", "-u", script, String(Self.httpPort)])
        processes.append(p)
        try await waitUntil(timeoutMillis: helperStartMillis) { p.stdout.contains("ready") }
    }

    /// Starts a TCP listener in the node's namespace on `port` (all addresses) that answers
    /// "node service" to whoever connects.
    public func startNodeService(port: Int) async throws {
        let code = """
            import socket
            s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', \(port))); s.listen(16)
            print('ready', flush=True)
            while True:
                c,_=s.accept(); c.sendall(b'node service\\n'); c.close()
            """
        let p = try Subprocess(["/usr/bin/nsenter", "--net=" + nodePath, "python3", "-u", "-c", code])
        processes.append(p)
        try await waitUntil(timeoutMillis: helperStartMillis) { p.stdout.contains("ready") }
    }

    /// Waits until something in the network namespace of process `pid` listens on TCP `port`
    /// (so a refused connection to it is the walls' doing, not a listener not yet up).
    public static func waitForListener(pid: Int32, port: Int) async throws {
        let digits = String(port, radix: 16, uppercase: true)
        let hex = ":" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        try await pollUntil {
            // IPv4 or IPv6 sockets: "local:port remote:port state", 0A is LISTEN.
            let table = (try? await Shell.output("nsenter -t \(pid) -n cat /proc/net/tcp /proc/net/tcp6")) ?? ""
            return table.split(separator: "\n").contains { line in
                let fields = line.split(separator: " ")
                return fields.count > 3 && fields[1].hasSuffix(hex) && fields[3] == "0A"
            }
        }
    }

    /// A resolv.conf naming the remote as the name server (what the node's would say); it goes
    /// with the lab's `cleanUp` (serve's tests write it beside their state directory).
    public func writeResolvConf(at path: String) throws {
        try FileSystem.create(path, contents: "nameserver \(Self.remoteAddress)\nsearch test\n")
        files.append(path)
    }

    /// `ip` output about the node's namespace (e.g. "link show", "addr show"). Throws when `ip`
    /// fails, so that a check for what is absent cannot pass on empty output.
    public func nodeIP(_ arguments: String) async throws -> String { try await Shell.output("ip -n \(node) \(arguments)") }

    /// The node's nftables ruleset as text (throws when `nft` fails).
    public func nodeRuleset() async throws -> String { try await Shell.output("nsenter --net=\(nodePath) nft list ruleset") }

    public func cleanUp() {
        for p in processes {
            p.signal(SIGKILL)
            _ = p.wait()
        }
        processes = []
        for f in files { _ = unlink(f) }
        files = []
        _ = try? Shell.run("ip netns del \(node) 2>/dev/null; ip netns del \(remote) 2>/dev/null; true")
    }
}

/// Runs `body` with a sandbox whose function bridge lives in a fresh `NetworkLab`'s node
/// namespace (name server: the lab's remote). Everything is removed afterwards.
public func withBridgeSandbox<T>(
    _ label: String, poolSize: Int = 0, poolNetwork: ContainerSpec.Network = .bridge, exclusive: Bool = false,
    configure: (inout FunctionNetworkConfiguration) -> Void = { _ in },
    _ body: (Sandbox, NetworkLab, TestEnvironment) async throws -> T
) async throws -> T {
    if exclusive { return try await withExclusiveGate { try await bridgeSandboxed(label, poolSize, poolNetwork, configure, body) } }
    return try await withSharedGate { try await bridgeSandboxed(label, poolSize, poolNetwork, configure, body) }
}

private func bridgeSandboxed<T>(
    _ label: String, _ poolSize: Int, _ poolNetwork: ContainerSpec.Network, _ configure: (inout FunctionNetworkConfiguration) -> Void,
    _ body: (Sandbox, NetworkLab, TestEnvironment) async throws -> T
) async throws -> T {
    do {
        let lab = try await NetworkLab(label)
        defer { lab.cleanUp() }
        let env = TestEnvironment(label)
        defer { env.cleanUp() }
        try FileSystem.makeDirectories(env.stateDirectory)
        let resolv = env.stateDirectory + "/node-resolv.conf"
        try lab.writeResolvConf(at: resolv)
        var network = FunctionNetworkConfiguration(nodeNamespacePath: lab.nodePath, resolvConfSource: resolv)
        configure(&network)
        var configuration = env.configuration(poolSize: poolSize)
        configuration.functionNetwork = network
        configuration.poolNetwork = poolSize > 0 ? poolNetwork : .none
        let sandbox = try Sandbox(configuration: configuration)
        do {
            let result = try await body(sandbox, lab, env)
            await sandbox.shutdown()
            return result
        } catch {
            await sandbox.shutdown()
            throw error
        }
    }
}
