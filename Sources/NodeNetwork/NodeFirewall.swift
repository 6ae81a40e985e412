import CNetlink
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The nftables table one runner instance owns for its bridge: outbound NAT for the function
/// subnet and the walls between functions and the node, other functions and link-local
/// addresses.
///
/// One table per instance, replaced as a whole in one transaction and deleted as a whole: the
/// runner never edits a rule it did not make. Runners sharing a bridge each add their table;
/// a packet must pass every table, so the strictest runner's walls hold for all, and one
/// runner leaving removes none of the others' walls.
struct NodeFirewall {
    let configuration: FunctionNetworkConfiguration
    /// The namespace descriptor the rules go into (-1: the runner's own).
    let namespaceFD: Int32
    let instanceID: String
    /// The functions' name servers: port 53 on them stays open through the walls (a cloud's
    /// resolver is often link-local, or the node itself).
    var nameServers: [IPv4Address] = []
    /// Set when fnrunner turned IPv4 forwarding on: then nothing but the bridge's traffic is
    /// forwarded, so the node does not become a router between its other interfaces.
    var forwardsOnlyTheBridge = false

    var tableName: String { Self.tableName(bridge: configuration.bridgeName, instance: instanceID) }

    /// "fnrunner_", the bridge's name with every byte but letters and digits escaped (one name
    /// per bridge, never two), "_" and the instance.
    static func tableName(bridge: String, instance: String) -> String {
        var encoded = ""
        for byte in bridge.utf8 {
            let isAlphanumeric = (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
            if isAlphanumeric {
                encoded.append(Character(UnicodeScalar(byte)))
            } else {
                let hex = String(byte, radix: 16)
                encoded += "_" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return "fnrunner_" + encoded + "_" + instance
    }

    /// The rules, in nft's syntax. Refusals are resets and ICMP errors, not silent drops, so a
    /// function that tries a closed path fails at once instead of waiting for a timeout.
    var ruleset: String {
        let bridge = "\"\(configuration.bridgeName)\""
        let refuse = ["meta l4proto tcp reject with tcp reset", "reject with icmpx type admin-prohibited"]
        func refusing(_ match: String) -> [String] { refuse.map { match + " " + $0 } }
        var dns: [String] = []
        if !nameServers.isEmpty {
            let set = nameServers.map(\.description).joined(separator: ", ")
            dns = ["iifname \(bridge) ip daddr { \(set) } meta l4proto { tcp, udp } th dport 53 accept"]
        }
        var input = ["iifname \(bridge) ct state established,related accept"] + dns
        if !configuration.allowNode { input += refusing("iifname \(bridge)") }
        var forward = ["iifname \(bridge) ct state invalid drop"] + dns
        if !configuration.allowFunctions { forward += refusing("iifname \(bridge) oifname \(bridge)") }
        if !configuration.allowMetadata { forward += refusing("iifname \(bridge) ip daddr 169.254.0.0/16") }
        // A port the node publishes by DNAT (a container runtime's, a service proxy's) is the
        // node's too, though the packet is forwarded rather than delivered.
        if !configuration.allowNode { forward += refusing("iifname \(bridge) ct status dnat") }
        forward += refusing("iifname \(bridge) meta nfproto ipv6")
        forward.append("iifname \(bridge) accept")
        forward.append("oifname \(bridge) ct state established,related accept")
        forward.append("oifname \(bridge) drop")
        if forwardsOnlyTheBridge { forward.append("iifname != \(bridge) oifname != \(bridge) drop") }
        func chain(_ name: String, _ hook: String, _ rules: [String]) -> String {
            "  chain \(name) {\n    type filter hook \(hook) priority filter; policy accept;\n"
                + rules.map { "    \($0)\n" }.joined() + "  }\n"
        }
        return "table inet \(tableName) {\n"
            + chain("input", "input", input) + chain("forward", "forward", forward)
            + "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
            + "    ip saddr \(configuration.subnet) oifname != \(bridge) masquerade\n  }\n}\n"
    }

    /// Puts the table in place, replacing any earlier one of the same name in one transaction.
    func install() throws(RunnerError) {
        try Self.run(
            "add table inet \(tableName)\ndelete table inet \(tableName)\n" + ruleset, namespaceFD: namespaceFD,
            table: tableName, step: "install nftables rules")
    }

    /// Removes the table (nothing when it is gone already).
    func remove() throws(RunnerError) { try Self.remove(tableName, namespaceFD: namespaceFD) }

    /// Removes a table by name (a crashed instance's), nothing when it is gone.
    static func remove(_ table: String, namespaceFD: Int32) throws(RunnerError) {
        try run("add table inet \(table)\ndelete table inet \(table)\n", namespaceFD: namespaceFD, table: table, step: "remove nftables rules")
    }

    private static func run(_ commands: String, namespaceFD: Int32, table: String, step: String) throws(RunnerError) {
        var message = [CChar](repeating: 0, count: 2048)
        let rc = rn_nft_run(namespaceFD, commands, &message, message.count)
        if rc == 0 { return }
        let text = String(nulTerminated: message).trimmed
        if rc == -ENOSYS {
            throw RunnerError(.unsupported, "nftables is not available (install Debian's libnftables1): \(text)", step: step)
        }
        throw RunnerError(.system, "nftables refused the runner's table \(table): \(text)", step: step, errno: -rc)
    }
}
