import CNetlink
import Logging
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The node's bridge for functions: opened once per runner, it gives each container a veth
/// pair with a leased address, a default route through the bridge, and name files; outbound
/// traffic leaves through NAT, and nftables keeps functions off the node, each other and
/// link-local addresses unless the operator opts in.
///
/// Everything per container happens with netlink on descriptors (no shell-outs), so a pool
/// can do it ahead of the call.
public final class BridgeNetwork: Sendable {
    public let configuration: FunctionNetworkConfiguration
    /// The links' MTU (the configured one, else the uplink's).
    public let mtu: Int
    /// Whether this runner made the bridge (and so removes it when it closes).
    public let madeBridge: Bool
    /// Stale leases of crashed runners whose veths this one removed when it opened.
    public let reclaimed: [IPv4Address]
    /// For changes (one request at a time, some of them slow).
    let node: RouteSocket
    /// For counters, read on the call path: never queued behind a change.
    let reader: RouteSocket
    let retiring: RetiringLinks
    let nodeNamespaceFD: Int32
    let bridgeIndex: Int32
    let leases: AddressLeases
    let firewall: NodeFirewall
    let runtimeDirectory: String
    let madeMarker: String
    let users: BridgeUsers
    let instanceID: String
    let isLive: @Sendable (String) -> Bool
    let resolvConf: String
    let logger: Logger
    private let closed = Mutex(false)

    /// Opens the bridge: makes it (or takes the operator's), refuses a subnet that a route of
    /// the node already covers, turns on forwarding, installs this instance's rules, and
    /// removes what crashed runners left (leases, veths and tables of instances `isLive` says
    /// are gone).
    ///
    /// - Parameters:
    ///   - stateDirectory: shared by runner instances (the leases live here).
    ///   - runtimeDirectory: this instance's own (resolv.conf and hosts files).
    public init(
        configuration: FunctionNetworkConfiguration, stateDirectory: String, runtimeDirectory: String, instanceID: String,
        isLive: @escaping @Sendable (String) -> Bool, logger: Logger
    ) throws(RunnerError) {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.instanceID = instanceID
        self.isLive = isLive
        self.runtimeDirectory = runtimeDirectory
        var nsFD: Int32 = -1
        if let path = configuration.nodeNamespacePath {
            nsFD = open(path, O_RDONLY | O_CLOEXEC)
            if nsFD < 0 { throw .system("open", errno: errno, "cannot open the node network namespace \(path)") }
        }
        self.nodeNamespaceFD = nsFD
        var cleanup = Cleanup(namespaceFD: nsFD, instanceID: instanceID)
        do throws(RunnerError) {
            let node = try RouteSocket(namespaceFD: nsFD < 0 ? nil : nsFD, purpose: "for the node's bridge")
            self.node = node
            let directory = stateDirectory + "/network/" + configuration.bridgeName
            try FileSystem.makeDirectories(directory, mode: 0o700)
            self.madeMarker = directory + "/made-by-fnrunner"
            // Recorded first, so a runner closing meanwhile sees this one and keeps the bridge.
            let users = try BridgeUsers(directory: directory + "/users")
            try users.join(instanceID)
            self.users = users
            cleanup.users = users
            self.leases = try AddressLeases(directory: directory + "/leases", subnet: configuration.subnet, owner: instanceID)
            self.reader = try RouteSocket(namespaceFD: nsFD < 0 ? nil : nsFD, purpose: "for link counters")
            self.retiring = RetiringLinks(socket: node, leases: leases, logger: logger)

            var stale: [IPv4Address] = []
            for lease in try leases.all() where lease.owner != instanceID && !isLive(lease.owner) {
                try node.deleteLink(named: NetworkAttachment.linkName(for: lease.address))
                leases.release(lease.address)
                stale.append(lease.address)
            }
            self.reclaimed = stale
            for owner in (try? FileSystem.list(directory + "/leases/.owners")) ?? [] where owner != instanceID && !isLive(owner) {
                leases.forget(owner: owner)
            }
            for dead in users.others(than: instanceID, isLive: isLive).dead {
                try NodeFirewall.remove(NodeFirewall.tableName(bridge: configuration.bridgeName, instance: dead), namespaceFD: nsFD)
                users.leave(dead)
            }

            let existing = try node.linkIndex(configuration.bridgeName)
            let index: Int32
            if let existing {
                index = existing
                madeBridge = FileSystem.exists(madeMarker)
            } else {
                // A fixed address: a bridge left to take its lowest port's changes it whenever a
                // container's veth comes or goes, and the frames other containers address to the
                // gateway they resolved a moment ago are dropped (a name lookup then waits 5 s).
                let mac = Self.localBridgeAddress()
                try node.call("RTM_NEWLINK", "cannot create bridge \(configuration.bridgeName)") { fd in
                    mac.withUnsafeBufferPointer { rn_nl_bridge_create(fd, configuration.bridgeName, $0.baseAddress) }
                }
                try FileSystem.create(madeMarker, contents: instanceID + "\n")
                cleanup.bridge = configuration.bridgeName
                cleanup.madeMarker = madeMarker
                guard let made = try node.linkIndex(configuration.bridgeName) else {
                    throw RunnerError(.notFound, "bridge \(configuration.bridgeName) vanished after it was made", step: "RTM_GETLINK")
                }
                index = made
                madeBridge = true
            }
            self.bridgeIndex = index
            try Self.refuseClashingRoutes(
                node.routes(), subnet: configuration.subnet, bridgeIndex: index, bridge: configuration.bridgeName,
                linkName: { [node] index in
                    (try? node.linkInfo(index)).map { info in withUnsafeBytes(of: info.name) { String(nulTerminated: $0.bindMemory(to: CChar.self)) } }
                })
            if let mtu = configuration.mtu { self.mtu = mtu } else { self.mtu = try Self.uplinkMTU(node) }

            let gateway = configuration.subnet.gateway
            try node.call("RTM_NEWADDR", "cannot give bridge \(configuration.bridgeName) address \(gateway)") { fd in
                let r = rn_nl_addr_add(fd, index, gateway.networkOrder, Int32(configuration.subnet.prefix))
                return r == -EEXIST ? 0 : r
            }
            try node.call("RTM_NEWLINK", "cannot bring bridge \(configuration.bridgeName) up") { rn_nl_link_set($0, index, 1, 0) }
            try FileSystem.makeDirectories(runtimeDirectory + "/hosts", mode: 0o755)
            self.resolvConf = runtimeDirectory + "/resolv.conf"
            let names = NameFiles.resolvConf(
                from: configuration.resolvConfSource, upstreamSource: "/run/systemd/resolve/resolv.conf")
            try FileSystem.create(resolvConf, contents: names.text)
            if names.servers.isEmpty {
                logger.warning(
                    "functions get no name server: \(configuration.resolvConfSource) lists none that a container can reach")
            }

            var firewall = NodeFirewall(configuration: configuration, namespaceFD: nsFD, instanceID: instanceID)
            firewall.nameServers = names.servers.compactMap(IPv4Address.init)
            firewall.forwardsOnlyTheBridge = try Self.turnOnForwarding(nsFD, marker: directory + "/forwarding-turned-on")
            self.firewall = firewall
            try firewall.install()
            cleanup.firewall = firewall
        } catch {
            cleanup.undo(node: try? RouteSocket(namespaceFD: nsFD < 0 ? nil : nsFD, purpose: "to undo"))
            throw error
        }
        logger.info(
            "function bridge ready",
            metadata: [
                "bridge": "\(configuration.bridgeName)", "subnet": "\(configuration.subnet)", "mtu": "\(mtu)",
                "made": "\(madeBridge)", "reclaimed": "\(reclaimed.count)",
            ])
    }

    /// What a failed open undoes: rules it installed, a bridge it made, its user record.
    private struct Cleanup {
        let namespaceFD: Int32
        let instanceID: String
        var bridge: String?
        var madeMarker: String?
        var firewall: NodeFirewall?
        var users: BridgeUsers?

        func undo(node: RouteSocket?) {
            try? firewall?.remove()
            if let bridge, let node { _ = try? node.deleteLink(named: bridge) }
            if let madeMarker { _ = unlink(madeMarker) }
            users?.leave(instanceID)
            if namespaceFD >= 0 { Glibc.close(namespaceFD) }
        }
    }

    /// Turns IPv4 forwarding on in the node's namespace. Returns whether fnrunner did (now or
    /// an earlier runner, as `marker` records), in which case only the bridge's traffic may be
    /// forwarded: the node was no router before.
    static func turnOnForwarding(_ nsFD: Int32, marker: String) throws(RunnerError) -> Bool {
        let path = "/proc/sys/net/ipv4/ip_forward"
        var buffer = [CChar](repeating: 0, count: 16)
        let read = rn_netns_sysctl_read(nsFD, path, &buffer, buffer.count)
        if read < 0 { throw .system("read \(path)", errno: -read, "cannot read whether the node forwards IPv4") }
        let value = String(nulTerminated: buffer).trimmed
        if value == "0" {
            let rc = rn_netns_sysctl(nsFD, path, "1")
            if rc < 0 { throw .system("write \(path)", errno: -rc, "cannot turn on IPv4 forwarding for functions") }
            try FileSystem.create(marker, contents: "")
        }
        return FileSystem.exists(marker)
    }

    static func refuseClashingRoutes(
        _ routes: [RouteSocket.Route], subnet: IPv4Network, bridgeIndex: Int32, bridge: String,
        linkName: (Int32) -> String? = { _ in nil }
    ) throws(RunnerError) {
        for route in routes where route.linkIndex != bridgeIndex && route.destination.prefix > 0 {
            if route.destination.overlaps(subnet) {
                throw RunnerError(
                    .invalidArgument,
                    "the function subnet \(subnet) overlaps the node's route to \(route.destination) "
                        + "(dev \(linkName(route.linkIndex) ?? "index \(route.linkIndex)")); "
                        + "choose another subnet for bridge \(bridge)", step: "check function subnet")
            }
        }
    }

    /// A random unicast, locally administered hardware address (no vendor's).
    static func localBridgeAddress() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var mac = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
        mac[0] = (mac[0] & 0xFC) | 0x02
        return mac
    }

    static func uplinkMTU(_ node: RouteSocket) throws(RunnerError) -> Int {
        guard let uplink = try node.routes().first(where: { $0.destination.prefix == 0 }) else { return 1500 }
        let mtu = try node.linkInfo(uplink.linkIndex).mtu
        return mtu >= 576 ? Int(mtu) : 1500
    }

    /// Puts a container's network namespace on the bridge: a veth pair (its end in the
    /// namespace named eth0), a leased address and the default route through the bridge. On
    /// failure nothing of it is left.
    ///
    /// `nsFD` is a descriptor of the namespace the caller holds (never a path by pid, which a
    /// recycled pid could answer).
    public func attach(namespace nsFD: Int32) throws(RunnerError) -> NetworkAttachment {
        if retiring.count > 0 { retiring.reap() }
        let address = try leases.acquire()
        let link = NetworkAttachment.linkName(for: address)
        var made = false
        do throws(RunnerError) {
            let bridge = bridgeIndex
            let mtu = UInt32(mtu)
            try node.call("RTM_NEWLINK", "cannot make veth \(link) on \(configuration.bridgeName)") {
                rn_nl_veth_create($0, link, "eth0", nsFD, bridge, mtu)
            }
            made = true
            guard let index = try node.linkIndex(link) else {
                throw RunnerError(.notFound, "veth \(link) vanished after it was made", step: "RTM_GETLINK")
            }
            if !configuration.allowFunctions {
                try node.call("RTM_NEWLINK", "cannot isolate bridge port \(link)") { rn_nl_port_isolate($0, index) }
            }
            let inside = try RouteSocket(namespaceFD: nsFD, purpose: "in the container's namespace")
            guard let eth0 = try inside.linkIndex("eth0") else {
                throw RunnerError(.notFound, "eth0 is missing in the container's namespace", step: "RTM_GETLINK")
            }
            let subnet = configuration.subnet
            try inside.call("RTM_NEWADDR", "cannot give eth0 address \(address)") {
                rn_nl_addr_add($0, eth0, address.networkOrder, Int32(subnet.prefix))
            }
            try inside.call("RTM_NEWLINK", "cannot bring eth0 up") { rn_nl_link_set($0, eth0, 1, 0) }
            try inside.call("RTM_NEWROUTE", "cannot route through \(subnet.gateway)") {
                rn_nl_route_default($0, eth0, subnet.gateway.networkOrder)
            }
            return NetworkAttachment(
                address: address, hostLink: link, hostLinkIndex: index, hostsFile: runtimeDirectory + "/hosts/" + address.description,
                resolvConf: resolvConf)
        } catch {
            if made {
                do {
                    try node.deleteLink(named: link)
                } catch {
                    // The veth may still be there: its address waits with the retiring ones.
                    retiring.add(address, link: link)
                    throw error
                }
            }
            leases.release(address)
            throw error
        }
    }

    /// Writes the attachment's hosts file naming `hostname` (known only when its container
    /// starts, while the attachment may have been made ahead in a pool).
    public func writeHosts(_ attachment: NetworkAttachment, hostname: String) throws(RunnerError) {
        try FileSystem.create(attachment.hostsFile, contents: NameFiles.hosts(address: attachment.address, hostname: hostname))
    }

    /// Takes a container off the bridge once its namespace is let go (the caller's part): the
    /// kernel removes the veth pair with the namespace, and the address is leased out again
    /// only after that (see RetiringLinks).
    public func detach(_ attachment: NetworkAttachment) {
        _ = unlink(attachment.hostsFile)
        retiring.add(attachment.address, link: attachment.hostLink)
    }

    /// Waits (bounded) until the veths of detached containers are gone and their addresses
    /// free; deletes those still there after `timeoutMillis`.
    public func settle(timeoutMillis: Int = 3000) { retiring.settle(timeoutMillis: timeoutMillis) }

    /// Bytes through the container's link so far (nil when the link is gone).
    public func counters(_ attachment: NetworkAttachment) -> NetworkCounters? {
        guard let info = try? reader.linkBytes(attachment.hostLinkIndex) else { return nil }
        // The host end receives what the function sends.
        return NetworkCounters(receivedBytes: info.tx_bytes, sentBytes: info.rx_bytes)
    }

    /// Addresses this runner holds now.
    public var leasedAddresses: [IPv4Address] {
        ((try? leases.all()) ?? []).filter { $0.owner == leases.owner }.map(\.address)
    }

    /// Removes this instance's rules and, with the last live runner on it, a bridge fnrunner
    /// made. Containers must be detached first. Only the first call does anything.
    public func close() {
        let first = closed.withLock { c -> Bool in
            defer { c = true }
            return !c
        }
        guard first else { return }
        retiring.settle(timeoutMillis: 3000)
        do { try firewall.remove() } catch { logger.error("cannot remove the function network's rules", metadata: ["error": "\(error)"]) }
        users.leave(instanceID)
        leases.close()
        // The bridge goes with the last live runner on it, if fnrunner made it.
        if madeBridge && users.others(than: instanceID, isLive: isLive).live.isEmpty {
            do {
                try node.deleteLink(named: configuration.bridgeName)
                _ = unlink(madeMarker)
            } catch {
                logger.error("cannot remove bridge", metadata: ["bridge": "\(configuration.bridgeName)", "error": "\(error)"])
            }
        }
        _ = unlink(resolvConf)
        if nodeNamespaceFD >= 0 { Glibc.close(nodeNamespaceFD) }
    }
}
