import CNetlink
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The nftables table the runner owns for one bridge: outbound NAT for the function subnet and
/// the walls between functions and the node, other functions and link-local addresses.
///
/// One table, replaced as a whole in one transaction and deleted as a whole: the runner never
/// edits a rule it did not make, and a restart after a crash replaces what the old one left.
struct NodeFirewall {
    let configuration: FunctionNetworkConfiguration
    /// The namespace descriptor the rules go into (-1: the runner's own).
    let namespaceFD: Int32

    var tableName: String {
        "fnrunner_" + String(String.UnicodeScalarView(configuration.bridgeName.unicodeScalars.map { c in
            c.properties.isAlphabetic || ("0"..."9").contains(c) ? c : "_"
        }))
    }

    /// The rules, in nft's syntax. Refusals are resets and ICMP errors, not silent drops, so a
    /// function that tries a closed path fails at once instead of waiting for a timeout.
    var ruleset: String {
        let bridge = "\"\(configuration.bridgeName)\""
        var input = ["iifname \(bridge) ct state established,related accept"]
        if !configuration.allowNode {
            input.append("iifname \(bridge) meta l4proto tcp reject with tcp reset")
            input.append("iifname \(bridge) reject with icmpx type admin-prohibited")
        }
        var forward: [String] = []
        if !configuration.allowFunctions {
            forward.append("iifname \(bridge) oifname \(bridge) meta l4proto tcp reject with tcp reset")
            forward.append("iifname \(bridge) oifname \(bridge) reject with icmpx type admin-prohibited")
        }
        if !configuration.allowMetadata {
            forward.append("iifname \(bridge) ip daddr 169.254.0.0/16 meta l4proto tcp reject with tcp reset")
            forward.append("iifname \(bridge) ip daddr 169.254.0.0/16 reject with icmpx type admin-prohibited")
        }
        forward.append("iifname \(bridge) accept")
        forward.append("oifname \(bridge) ct state established,related accept")
        forward.append("oifname \(bridge) drop")
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
        try run("add table inet \(tableName)\ndelete table inet \(tableName)\n" + ruleset, step: "install nftables rules")
    }

    /// Removes the table (nothing when it is gone already).
    func remove() throws(RunnerError) {
        try run("add table inet \(tableName)\ndelete table inet \(tableName)\n", step: "remove nftables rules")
    }

    private func run(_ commands: String, step: String) throws(RunnerError) {
        var message = [CChar](repeating: 0, count: 2048)
        let rc = rn_nft_run(namespaceFD, commands, &message, message.count)
        if rc == 0 { return }
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmed
        if rc == -ENOSYS {
            throw RunnerError(.unsupported, "nftables is not available (install Debian's libnftables1): \(text)", step: step)
        }
        throw RunnerError(.system, "nftables refused the runner's table \(tableName): \(text)", step: step, errno: -rc)
    }
}
