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

    public static func contains(_ name: String) -> Bool { connectionScoped.contains { equalsIgnoringCase(name, $0) } }

    /// Whether a header with this name is passed on to the next hop.
    public static func isPassedOn(_ name: String) -> Bool {
        !connectionScoped.contains { equalsIgnoringCase(name, $0) } && !runnerSet.contains { equalsIgnoringCase(name, $0) }
    }

    /// Compared as bytes, ignoring ASCII case: every header of every call passes here, both
    /// ways, and a lower-cased copy and a hash per name cost more than these few compares
    /// (most names differ from each of these in length).
    private static let connectionScoped = names.map { Array($0.utf8) }
    private static let runnerSet = setByRunner.map { Array($0.utf8) }

    /// Whether `name` is `lower` (lower-case letters and '-') in any case.
    static func equalsIgnoringCase(_ name: String, _ lower: [UInt8]) -> Bool {
        let bytes = name.utf8
        guard bytes.count == lower.count else { return false }
        return zip(bytes, lower).allSatisfy { b, l in b == l || (l >= 0x61 && l <= 0x7A && b == l - 0x20) }
    }
}
