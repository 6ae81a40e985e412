import RunnerOS

/// An image name as users write it, normalised the way Docker does: `busybox` is
/// `docker.io/library/busybox:latest`, `localhost:5000/a/b:t` keeps its registry, and a digest
/// (`@sha256:...`) pins the content whatever the tag says.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// Registry host, with port if any ("docker.io", "localhost:5000").
    public let domain: String
    /// Repository path inside the registry ("library/busybox").
    public let path: String
    public let tag: String?
    public let digest: Digest?

    public static let defaultDomain = "docker.io"

    /// The canonical form: domain/path, then :tag and/or @digest.
    public var description: String {
        var s = domain + "/" + path
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest.description }
        return s
    }

    /// domain/path without tag or digest.
    public var repository: String { domain + "/" + path }

    /// What to ask the registry for: the digest if pinned, else the tag.
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    public init(domain: String, path: String, tag: String?, digest: Digest?) {
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
    }

    public static func parse(_ text: String) throws(RunnerError) -> ImageReference {
        func invalid(_ why: String) -> RunnerError {
            RunnerError(.invalidArgument, "invalid image reference \"\(text)\": \(why)", step: "parse image reference")
        }
        if text.isEmpty { throw invalid("it is empty") }
        if text.contains(where: { $0.isWhitespace }) { throw invalid("it contains whitespace") }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            digest = try Digest.parse(String(rest[rest.index(after: at)...]), context: "image reference \"\(text)\"")
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
            if !isValidTag(tag!) { throw invalid("tag \"\(tag!)\" must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'") }
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var domain = defaultDomain
        if components.count > 1, let first = components.first,
            first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: { $0.isUppercase })
        {
            domain = first
            components.removeFirst()
            if !isValidDomain(domain) { throw invalid("registry \"\(domain)\" is not a valid host[:port]") }
        }
        if components.isEmpty || components.contains(where: { $0.isEmpty }) { throw invalid("empty path component") }
        for c in components {
            if c.contains(where: { $0.isUppercase }) { throw invalid("repository name must be lowercase") }
            if !isValidPathComponent(c) {
                throw invalid("path component \"\(c)\" must be lowercase letters and digits separated by '.', '_', '__' or '-'")
            }
        }
        if domain == defaultDomain && components.count == 1 { components.insert("library", at: 0) }
        let path = components.joined(separator: "/")
        if domain.count + 1 + path.count > 255 { throw invalid("name longer than 255 characters") }
        if tag == nil && digest == nil { tag = "latest" }
        return ImageReference(domain: domain, path: path, tag: tag, digest: digest)
    }

    static func isValidTag(_ t: String) -> Bool {
        guard let first = t.first, t.count <= 128, first != ".", first != "-" else { return false }
        return t.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") }
    }

    static func isValidPathComponent(_ c: String) -> Bool {
        // [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
        let chars = Array(c)
        func alnum(_ ch: Character) -> Bool { ch.isASCII && (ch.isLowercase || ch.isNumber) }
        guard let f = chars.first, let l = chars.last, alnum(f), alnum(l) else { return false }
        var i = 0
        while i < chars.count {
            if alnum(chars[i]) { i += 1; continue }
            var j = i
            while j < chars.count && !alnum(chars[j]) { j += 1 }
            let sep = String(chars[i..<j])
            if !(sep == "." || sep == "_" || sep == "__" || sep.allSatisfy({ $0 == "-" })) { return false }
            i = j
        }
        return true
    }

    static func isValidDomain(_ d: String) -> Bool {
        var host = Substring(d)
        if let colon = d.lastIndex(of: ":") {
            let port = d[d.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isNumber), let p = Int(port), p > 0, p < 65536 else { return false }
            host = d[..<colon]
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { return host.count > 2 }  // IPv6 literal
        return !host.isEmpty
            && host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                !label.isEmpty && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
    }
}
