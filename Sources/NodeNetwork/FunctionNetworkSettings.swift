import RunnerOS

/// The node's function-network settings as FN_* variables (and the serve flags of the same
/// names) give them: which network functions get by default, whether `host` may be asked for,
/// and the bridge's configuration.
public struct FunctionNetworkSettings: Sendable, Equatable {
    /// What functions get unless their annotation asks otherwise: `none`, `bridge` or `host`.
    public var defaultNetwork: String
    /// Whether a function may share the node's own network namespace (FN_FUNCTION_NETWORK_ALLOW
    /// lists "host"; off by default, since such a function sees every port of the node).
    public var allowHost: Bool
    public var bridge: FunctionNetworkConfiguration

    public static let networks = ["none", "bridge", "host"]

    public init(defaultNetwork: String = "bridge", allowHost: Bool = false, bridge: FunctionNetworkConfiguration = .init()) {
        self.defaultNetwork = defaultNetwork
        self.allowHost = allowHost
        self.bridge = bridge
    }

    /// Whether the node sets its bridge up: only when it is the default, so a node whose
    /// functions default to `none` or `host` never touches the node's routes or rules.
    public var usesBridge: Bool { defaultNetwork == "bridge" }

    /// The networks a function here may ask for.
    public var available: Set<String> {
        var set: Set<String> = ["none"]
        if usesBridge { set.insert("bridge") }
        if allowHost || defaultNetwork == "host" { set.insert("host") }
        return set
    }

    /// Reads FN_FUNCTION_NETWORK, FN_FUNCTION_BRIDGE, FN_FUNCTION_SUBNET,
    /// FN_FUNCTION_NETWORK_ALLOW, FN_FUNCTION_MTU, FN_FUNCTION_RESOLV_CONF and
    /// FN_FUNCTION_NODE_NETNS over `defaults`; a bad value is an error naming its variable.
    public static func fromEnvironment(_ env: [String: String], defaults: FunctionNetworkSettings = .init())
        throws(RunnerError) -> FunctionNetworkSettings
    {
        var s = defaults
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let v = value("FN_FUNCTION_NETWORK") { try s.setDefaultNetwork(v, source: "FN_FUNCTION_NETWORK") }
        if let v = value("FN_FUNCTION_BRIDGE") { s.bridge.bridgeName = v }
        if let v = value("FN_FUNCTION_SUBNET") { try s.setSubnet(v, source: "FN_FUNCTION_SUBNET") }
        if let v = value("FN_FUNCTION_NETWORK_ALLOW") { try s.allow(v, source: "FN_FUNCTION_NETWORK_ALLOW") }
        if let v = value("FN_FUNCTION_MTU") { try s.setMTU(v, source: "FN_FUNCTION_MTU") }
        if let v = value("FN_FUNCTION_RESOLV_CONF") { s.bridge.resolvConfSource = v }
        if let v = value("FN_FUNCTION_NODE_NETNS") { s.bridge.nodeNamespacePath = v }
        try s.validate()
        return s
    }

    public mutating func setDefaultNetwork(_ text: String, source: String) throws(RunnerError) {
        guard Self.networks.contains(text) else {
            throw RunnerError(.invalidArgument, "\(source) \"\(text)\" is not one of none, bridge, host", step: "function network")
        }
        defaultNetwork = text
    }

    public mutating func setSubnet(_ text: String, source: String) throws(RunnerError) {
        do { bridge.subnet = try IPv4Network(parsing: text) } catch {
            throw RunnerError(.invalidArgument, "\(source): \(error.message)", step: "function network")
        }
    }

    public mutating func setMTU(_ text: String, source: String) throws(RunnerError) {
        guard let mtu = Int(text) else {
            throw RunnerError(.invalidArgument, "\(source) \"\(text)\" is not a number", step: "function network")
        }
        bridge.mtu = mtu
    }

    /// A comma-separated list of opt-ins: node, functions, metadata (see
    /// FunctionNetworkConfiguration) and host.
    public mutating func allow(_ list: String, source: String) throws(RunnerError) {
        var rest: [String] = []
        for item in list.split(separator: ",").map(\.trimmed) where !item.isEmpty {
            if item == "host" { allowHost = true } else { rest.append(item) }
        }
        do { try bridge.allow(rest.joined(separator: ",")) } catch {
            throw RunnerError(.invalidArgument, "\(source): \(error.message) (or host)", step: "function network")
        }
    }

    public func validate() throws(RunnerError) {
        try bridge.validate()
    }
}
