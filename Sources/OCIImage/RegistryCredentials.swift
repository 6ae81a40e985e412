import FoundationEssentials
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Registry credentials, from `FN_DOCKER_AUTH` (JSON, as Fn reads it) and from Docker's
/// `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
///
/// Both the `{"auths": {host: {"auth": base64}}}` form and Fn's `{host: {"username", "password"}}`
/// form are read. A key matches a registry host exactly or as a parent domain (`example.com`
/// matches `registry.example.com`), as Fn's matching by sub-domain does; Docker Hub's many names
/// (`docker.io`, `index.docker.io`, `registry-1.docker.io`, `https://index.docker.io/v1/`) are one.
public struct RegistryCredentials: Sendable {
    public struct Login: Sendable, Equatable {
        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }

        public var username: String
        public var password: String
    }

    var entries: [(host: String, login: Login)]

    public init(entries: [(String, Login)] = []) { self.entries = entries.map { (Self.normalize($0.0), $0.1) } }

    /// Loads from the environment and the Docker config file (missing sources are fine; a
    /// malformed one is an error naming it).
    public static func load(environment: [String: String]) throws(RunnerError) -> RegistryCredentials {
        var creds = RegistryCredentials()
        if let json = environment["FN_DOCKER_AUTH"], !json.isEmpty {
            creds.entries += try parse(json, source: "FN_DOCKER_AUTH")
        }
        let dir = environment["DOCKER_CONFIG"] ?? (environment["HOME"].map { $0 + "/.docker" } ?? "/root/.docker")
        let path = dir + "/config.json"
        if FileSystem.exists(path) { creds.entries += try parse(try FileSystem.read(path), source: path) }
        return creds
    }

    static func parse(_ json: String, source: String) throws(RunnerError) -> [(host: String, login: Login)] {
        struct Entry: Decodable {
            var auth: String?
            var username: String?
            var password: String?
        }
        struct Config: Decodable { var auths: [String: Entry]? }
        let data = Data(json.utf8)
        var map: [String: Entry] = [:]
        do {
            if let auths = try JSONDecoder().decode(Config.self, from: data).auths {
                map = auths
            } else {
                map = try JSONDecoder().decode([String: Entry].self, from: data)
            }
        } catch {
            throw RunnerError(.invalidArgument, "registry credentials in \(source) are not valid JSON: \(error)", step: "load credentials")
        }
        var out: [(String, Login)] = []
        for (host, e) in map {
            if let auth = e.auth, !auth.isEmpty {
                guard let decoded = Base64.decode(auth), let colon = decoded.firstIndex(of: ":") else {
                    throw RunnerError(.invalidArgument, "the auth of \(host) in \(source) is not base64 of user:password", step: "load credentials")
                }
                out.append((normalize(host), Login(username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]))))
            } else if let u = e.username, let p = e.password {
                out.append((normalize(host), Login(username: u, password: p)))
            }
        }
        return out
    }

    static let dockerHubNames: Set<String> = ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]

    /// "https://index.docker.io/v1/" → "index.docker.io"; lowercased host[:port].
    static func normalize(_ key: String) -> String {
        var k = Substring(key.lowercased())
        for prefix in ["https://", "http://"] where k.hasPrefix(prefix) { k = k.dropFirst(prefix.count) }
        if let slash = k.firstIndex(of: "/") { k = k[..<slash] }
        return String(k)
    }

    /// The login for a registry (the reference's domain, e.g. "docker.io" or "localhost:5000").
    public func login(for registry: String) -> Login? {
        let host = Self.normalize(registry)
        let hub = Self.dockerHubNames.contains(host)
        if let exact = entries.first(where: { $0.host == host || (hub && Self.dockerHubNames.contains($0.host)) }) {
            return exact.login
        }
        return entries.first { host.hasSuffix("." + $0.host) }?.login
    }
}

/// Standard base64 (RFC 4648), without Foundation's Data overhead on this path.
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? alphabet[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> String? {
        var lookup = [UInt8](repeating: 255, count: 256)
        for (i, c) in alphabet.enumerated() { lookup[Int(c)] = UInt8(i) }
        var bits: UInt32 = 0
        var count = 0
        var out: [UInt8] = []
        for c in text.utf8 {
            if c == UInt8(ascii: "=") { break }
            if c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") { continue }
            let v = lookup[Int(c)]
            if v == 255 { return nil }
            bits = bits << 6 | UInt32(v)
            count += 6
            if count >= 8 {
                count -= 8
                out.append(UInt8((bits >> UInt32(count)) & 0xff))
            }
        }
        return String(bytes: out, encoding: .utf8)
    }
}
