/// How the runner talks to registries.
public struct RegistryOptions: Sendable {
    /// host[:port] of registries that may be reached over plain HTTP (after HTTPS fails).
    /// localhost, 127.0.0.0/8 and ::1 always may.
    public var insecureRegistries: Set<String>
    /// Per-registry CA files live in `<certsDirectory>/<host[:port]>/ca.crt`, trusted in
    /// addition to the system CAs (the layout Docker uses under /etc/docker/certs.d).
    public var certsDirectory: String
    public var credentials: RegistryCredentials
    /// Attempts per request for transient failures (connection, timeout, 429, 5xx).
    public var maxAttempts: Int
    public var retryBaseDelayMillis: Int

    public init(
        insecureRegistries: Set<String> = [], certsDirectory: String = "/etc/docker/certs.d",
        credentials: RegistryCredentials = RegistryCredentials(), maxAttempts: Int = 5, retryBaseDelayMillis: Int = 200
    ) {
        self.insecureRegistries = insecureRegistries
        self.certsDirectory = certsDirectory
        self.credentials = credentials
        self.maxAttempts = maxAttempts
        self.retryBaseDelayMillis = retryBaseDelayMillis
    }

    public func allowsPlainHTTP(_ host: String) -> Bool {
        let name = host.hasPrefix("[") ? String(host[..<(host.firstIndex(of: "]").map { host.index(after: $0) } ?? host.endIndex)]) : String(host.split(separator: ":").first ?? "")
        return insecureRegistries.contains(host) || insecureRegistries.contains(name) || name == "localhost"
            || name.hasPrefix("127.") || name == "[::1]"
    }
}
