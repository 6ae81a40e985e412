import RunnerOS

/// How the node's bridge for functions is set up and what functions may reach through it.
public struct FunctionNetworkConfiguration: Sendable, Equatable {
    /// The bridge's name. One the runner makes is removed again when it stops; an existing one
    /// (the operator's) is used as it is and left in place.
    public var bridgeName: String
    /// Functions get addresses from it; the first is the bridge's (their gateway).
    public var subnet: IPv4Network
    /// The network namespace that plays the node (a path such as /run/netns/NAME); nil: the
    /// runner's own. Tests use it to keep everything inside namespaces they made.
    public var nodeNamespacePath: String?
    /// The resolv.conf functions' name servers come from (loopback resolvers are replaced by
    /// their upstream servers, as Docker does).
    public var resolvConfSource: String
    /// Opt-ins, each opening one hole: the node's own addresses (its ports, services on the
    /// bridge address), other functions' containers, and link-local 169.254.0.0/16 (cloud
    /// metadata services).
    public var allowNode: Bool
    public var allowFunctions: Bool
    public var allowMetadata: Bool
    /// Links' MTU; nil takes the uplink's (the link of the default route), else 1500.
    public var mtu: Int?

    public static let defaultBridgeName = "fnrunner0"
    public static let defaultSubnet = IPv4Network(base: IPv4Address(0x0A59_0000), prefix: 16)  // 10.89.0.0/16

    public init(
        bridgeName: String = defaultBridgeName, subnet: IPv4Network = defaultSubnet, nodeNamespacePath: String? = nil,
        resolvConfSource: String = "/etc/resolv.conf", allowNode: Bool = false, allowFunctions: Bool = false,
        allowMetadata: Bool = false, mtu: Int? = nil
    ) {
        self.bridgeName = bridgeName
        self.subnet = subnet
        self.nodeNamespacePath = nodeNamespacePath
        self.resolvConfSource = resolvConfSource
        self.allowNode = allowNode
        self.allowFunctions = allowFunctions
        self.allowMetadata = allowMetadata
        self.mtu = mtu
    }

    /// Checks what the kernel would otherwise refuse with a less helpful error.
    public func validate() throws(RunnerError) {
        let allowed = bridgeName.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f || c == 0x2e
        }
        guard !bridgeName.isEmpty, bridgeName.utf8.count <= 15, allowed else {
            throw RunnerError(
                .invalidArgument, "bridge name \"\(bridgeName)\" must be 1-15 letters, digits, '-', '_' or '.'",
                step: "function network")
        }
        if !(8...30).contains(subnet.prefix) {
            throw RunnerError(.invalidArgument, "subnet \(subnet) needs a prefix length from /8 to /30", step: "function network")
        }
        if let mtu, !(576...65535).contains(mtu) {
            throw RunnerError(.invalidArgument, "MTU \(mtu) is outside 576...65535", step: "function network")
        }
    }

    /// The opt-ins as FN_FUNCTION_NETWORK_ALLOW lists them ("node,functions,metadata").
    public mutating func allow(_ list: String) throws(RunnerError) {
        for item in list.split(separator: ",").map(\.trimmed) where !item.isEmpty {
            switch item {
            case "node": allowNode = true
            case "functions": allowFunctions = true
            case "metadata": allowMetadata = true
            default:
                throw RunnerError(
                    .invalidArgument, "\"\(item)\" is not one of node, functions, metadata", step: "function network allow")
            }
        }
    }
}
