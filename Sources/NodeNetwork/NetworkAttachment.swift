/// One container's place on the bridge: its address (leased), the host end of its veth pair,
/// and the hosts file made for it.
public struct NetworkAttachment: Sendable, Equatable {
    public let address: IPv4Address
    /// The veth end on the node, named for the address ("fv" and its eight hex digits), so a
    /// name is never in use twice while its address is leased.
    public let hostLink: String
    /// The host end's interface index in the node's namespace, for reading its counters by
    /// index (RTM_GETSTATS takes no name).
    public let hostLinkIndex: Int32
    public let hostsFile: String
    /// The node's resolv.conf for functions (the same file for all).
    public let resolvConf: String

    static func linkName(for address: IPv4Address) -> String {
        let hex = String(address.value, radix: 16)
        return "fv" + String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// Bytes a container moved through its link, from the function's side.
public struct NetworkCounters: Sendable, Equatable {
    public var receivedBytes: UInt64
    public var sentBytes: UInt64

    public init(receivedBytes: UInt64, sentBytes: UInt64) {
        self.receivedBytes = receivedBytes
        self.sentBytes = sentBytes
    }
}
