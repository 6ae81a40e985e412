/// Which headers travel between a caller and a function: never those that belong to one
/// connection (RFC 9110 §7.6.1), nor those the runner sets itself on each hop.
public enum HopByHop {
    /// Lower-case names of the connection-scoped headers.
    public static let names: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    /// Lower-case names the runner writes itself on every hop (the caller's are dropped).
    public static let setByRunner: Set<String> = ["host", "content-length", "fn-call-id", "fn-deadline"]

    public static func contains(_ name: String) -> Bool { names.contains(name.lowercased()) }

    /// Whether a header with this name is passed on to the next hop.
    public static func isPassedOn(_ name: String) -> Bool {
        let lower = name.lowercased()
        return !names.contains(lower) && !setByRunner.contains(lower)
    }
}
