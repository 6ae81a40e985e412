import FoundationEssentials
import CCurlShim
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The Distribution (OCI) API v2 client for one registry: ping, authentication (anonymous or
/// credentialed bearer tokens, Basic), manifests and blobs, with retries and resumed downloads.
final class RegistryClient {
    let registry: String
    let options: RegistryOptions
    private let transfer = HTTPTransfer()
    private var baseURL: String?
    private var challenge: AuthChallenge?
    private var authorization: [String: String] = [:]  // scope -> header value
    private let caFile: String?

    init(registry: String, options: RegistryOptions) {
        self.registry = registry
        self.options = options
        let ca = options.certsDirectory + "/" + registry + "/ca.crt"
        caFile = FileSystem.exists(ca) ? ca : nil
    }

    /// Docker Hub's API lives on another host than its name.
    var apiHost: String { registry == "docker.io" ? "registry-1.docker.io" : registry }

    // MARK: - connection and auth

    /// GET /v2/: picks https (or http for an insecure registry whose TLS fails) and learns the challenge.
    private func connect() throws(RunnerError) -> String {
        if let baseURL { return baseURL }
        var candidates = ["https://" + apiHost]
        if options.allowsPlainHTTP(registry) { candidates.append("http://" + apiHost) }
        var lastError: RunnerError?
        for base in candidates {
            // A first contact that is refused means no registry listens there: Fn (and Docker)
            // fail at once, so the call's error is not held back by retries.
            let r = try withRetries("GET \(base)/v2/", retryingRefused: false) { () -> HTTPTransfer.Response in
                transfer.perform(url: base + "/v2/", caFile: caFile)
            }
            if !r.ok {
                lastError = RunnerError(.unavailable, "cannot reach registry \(registry) at \(base): \(r.error)", step: "ping registry")
                continue
            }
            if r.status == 401, let header = r.header("www-authenticate") { challenge = AuthChallenge.parse(header) }
            if r.status == 200 || r.status == 401 {
                baseURL = base
                return base
            }
            lastError = RunnerError(.unavailable, "registry \(registry) answered /v2/ with HTTP \(r.status)", step: "ping registry")
        }
        throw lastError ?? RunnerError(.unavailable, "cannot reach registry \(registry)", step: "ping registry")
    }

    private func authHeader(scope: String) throws(RunnerError) -> String? {
        guard let challenge else { return nil }
        if let cached = authorization[scope] { return cached }
        let login = options.credentials.login(for: registry)
        let header: String
        switch challenge.scheme {
        case "basic":
            guard let login else {
                throw RunnerError(
                    .unauthorized,
                    "registry \(registry) requires a login: add it to ~/.docker/config.json (or $DOCKER_CONFIG) or FN_DOCKER_AUTH",
                    step: "authenticate")
            }
            header = "Basic " + Base64.encode(login.username + ":" + login.password)
        case "bearer":
            header = "Bearer " + (try fetchToken(challenge, scope: scope, login: login))
        default:
            throw RunnerError(.unsupported, "registry \(registry) asks for unsupported auth scheme \(challenge.scheme)", step: "authenticate")
        }
        authorization[scope] = header
        return header
    }

    /// Whether a response URL is the registry's own (scheme, host and port of `base`).
    private func isRegistry(_ url: String, base: String) -> Bool {
        url.isEmpty || url == base || url.hasPrefix(base + "/")
    }

    private func fetchToken(_ c: AuthChallenge, scope: String, login: RegistryCredentials.Login?) throws(RunnerError) -> String {
        guard let realm = c.parameters["realm"], realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
            throw RunnerError(.unauthorized, "registry \(registry) sent a bearer challenge without a usable realm", step: "authenticate")
        }
        // Credentials travel only encrypted, or to the registry's own host (a local plain registry).
        let realmHost = realm.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init) ?? ""
        let sendLogin = realm.hasPrefix("https://") || realmHost == apiHost
        var query: [String] = []
        if let service = c.parameters["service"] { query.append("service=" + percentEncode(service)) }
        query.append("scope=" + percentEncode(scope))
        let url = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
        var headers: [String] = []
        if let login, sendLogin { headers.append("Authorization: Basic " + Base64.encode(login.username + ":" + login.password)) }
        var body: [UInt8] = []
        let r = try withRetries("GET \(realm)") { () -> HTTPTransfer.Response in
            body = []
            return transfer.perform(url: url, headers: headers, caFile: caFile) { _, chunk in
                body.append(contentsOf: chunk)
                return body.count < 1 << 20
            }
        }
        if !r.ok { throw RunnerError(.unavailable, "cannot reach token service \(realm): \(r.error)", step: "authenticate") }
        if r.status == 401 || r.status == 403 {
            throw RunnerError(.unauthorized, "the token service of \(registry) refused the credentials (HTTP \(r.status))", step: "authenticate")
        }
        struct Token: Decodable {
            var token: String?
            var access_token: String?
        }
        guard r.status == 200, let t = try? JSONDecoder().decode(Token.self, from: Data(body)), let token = t.token ?? t.access_token
        else {
            throw RunnerError(.unauthorized, "the token service of \(registry) answered HTTP \(r.status) without a token", step: "authenticate")
        }
        return token
    }

    /// A request to the registry with auth: on a 401 it authenticates for `scope` and tries once more.
    /// With `retry: false` a transient failure is returned to the caller, which must then decide
    /// how to go on (a blob download resumes from what it already has, not from the start).
    private func request(
        _ path: String, scope: String, accept: [String] = [], range: String? = nil, retry: Bool = true,
        beforeAttempt: @escaping () -> Void = {}, onBody: @escaping (Int, UnsafeRawBufferPointer) -> Bool
    ) throws(RunnerError) -> HTTPTransfer.Response {
        let base = try connect()
        var response: HTTPTransfer.Response?
        for attempt in 0..<2 {
            var headers = accept.isEmpty ? [] : ["Accept: " + accept.joined(separator: ", ")]
            if let auth = try authHeader(scope: scope) { headers.append("Authorization: " + auth) }
            let perform = { () -> HTTPTransfer.Response in
                beforeAttempt()
                return self.transfer.perform(url: base + path, headers: headers, range: range, caFile: self.caFile, onBody: onBody)
            }
            let r = retry ? try withRetries("GET \(path)", perform) : perform()
            response = r
            if r.status == 401 && attempt == 0 && isRegistry(r.effectiveURL, base: base) {
                // Only the registry itself may ask for credentials: a 401 from a redirect
                // target (blob storage, a CDN) must not steer them to a realm of its choosing.
                if let header = r.header("www-authenticate") { challenge = AuthChallenge.parse(header) }
                authorization[scope] = nil
                if challenge != nil { continue }
            }
            break
        }
        return response!
    }

    /// Runs `perform` up to maxAttempts times while it fails transiently (connection errors,
    /// timeouts, 429 and 5xx), backing off exponentially.
    private func withRetries(
        _ what: String, retryingRefused: Bool = true, _ perform: () throws(RunnerError) -> HTTPTransfer.Response
    ) throws(RunnerError) -> HTTPTransfer.Response {
        var attempt = 0
        while true {
            let r = try perform()
            attempt += 1
            let refused = !r.ok && r.curlCode == Self.curlCouldNotConnect
            let transient =
                (!r.ok && isTransientCurl(r.curlCode) && (retryingRefused || !refused)) || [429, 500, 502, 503, 504].contains(r.status)
            if !transient || attempt >= options.maxAttempts { return r }
            usleep(UInt32(options.retryBaseDelayMillis * 1000 << min(attempt - 1, 5)))
        }
    }

    // MARK: - manifests and blobs

    struct FetchedManifest {
        var bytes: [UInt8]
        var mediaType: String?
        var digest: Digest
    }

    /// GET /v2/<path>/manifests/<reference>, with the full Accept list; the digest is checked
    /// against the reference (when it is one) and against Docker-Content-Digest.
    func manifest(_ path: String, reference: String) throws(RunnerError) -> FetchedManifest {
        var body: [UInt8] = []
        let r = try request(
            "/v2/\(path)/manifests/\(reference)", scope: "repository:\(path):pull", accept: MediaType.manifestAccept,
            beforeAttempt: { body = [] }  // a retried or re-authenticated request starts a new body
        ) { _, chunk in
            body.append(contentsOf: chunk)
            return body.count <= 4 << 20
        }
        try check(r, body: body, what: "manifest \(path):\(reference)")
        let digest = Digest.of(body)
        if reference.hasPrefix("sha256:"), digest.description != reference {
            throw RunnerError(.invalidState, "manifest \(reference) from \(registry) does not match its digest (got \(digest))", step: "verify manifest")
        }
        if let header = r.header("docker-content-digest"), header.hasPrefix("sha256:"), header != digest.description {
            throw RunnerError(.invalidState, "manifest of \(path):\(reference) does not match Docker-Content-Digest \(header)", step: "verify manifest")
        }
        return FetchedManifest(bytes: body, mediaType: r.contentType.map { String($0.split(separator: ";")[0]).trimmed }, digest: digest)
    }

    /// Streams a blob into the content store, resuming with Range after an interrupted transfer.
    func blob(_ path: String, _ d: Descriptor, into store: ContentStore, progress: @escaping (Int64) -> Void) throws(RunnerError) {
        let writer = try BlobWriter(store: store)
        do throws(RunnerError) {
            var resumes = 0
            while true {
                let offset = writer.written
                var failure: RunnerError?
                var restarted = false
                let r = try request(
                    "/v2/\(path)/blobs/\(d.digest)", scope: "repository:\(path):pull", range: offset > 0 ? "\(offset)-" : nil,
                    retry: false
                ) { status, chunk in
                    guard status == 200 || status == 206 else { return true }  // an error body: read for the message
                    if offset > 0 && status == 200 && !restarted {
                        restarted = true  // the server ignored Range: start over
                        do throws(RunnerError) { try writer.reset() } catch { failure = error; return false }
                    }
                    do throws(RunnerError) { try writer.write(chunk) } catch { failure = error; return false }
                    progress(writer.written)
                    return writer.written <= d.size
                }
                if let failure { throw failure }
                if r.ok && (r.status == 200 || r.status == 206) { break }
                if !r.ok && writer.written > d.size {
                    throw RunnerError(.invalidState, "blob \(d.digest) is larger than its descriptor's \(d.size) bytes", step: "download blob")
                }
                let transient = (!r.ok && isTransientCurl(r.curlCode)) || [429, 500, 502, 503, 504].contains(r.status)
                if transient && resumes < options.maxAttempts {
                    resumes += 1
                    usleep(UInt32(options.retryBaseDelayMillis * 1000 << min(resumes - 1, 5)))
                    continue
                }
                try check(r, body: [], what: "blob \(d.digest)")
                throw RunnerError(.unavailable, "downloading blob \(d.digest) failed: \(r.error)", step: "download blob")
            }
            _ = try writer.commit(expected: d.digest, size: d.size)
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Turns a failed response into a clear error (404 → not found, 401/403 → unauthorized).
    private func check(_ r: HTTPTransfer.Response, body: [UInt8], what: String) throws(RunnerError) {
        if !r.ok { throw RunnerError(.unavailable, "cannot fetch \(what) from \(registry): \(r.error)", step: "fetch") }
        if r.status == 200 || r.status == 206 { return }
        let detail = Self.registryErrors(body)
        switch r.status {
        case 404:
            throw RunnerError(.notFound, "\(what) was not found in \(registry)\(detail)", step: "fetch")
        case 401, 403:
            throw RunnerError(.unauthorized, "\(registry) refused access to \(what) (HTTP \(r.status))\(detail): check the credentials", step: "fetch")
        default:
            throw RunnerError(.unavailable, "\(registry) answered HTTP \(r.status) for \(what)\(detail)", step: "fetch")
        }
    }

    /// ": MANIFEST_UNKNOWN manifest unknown" from the registry's error body, if it has one.
    static func registryErrors(_ body: [UInt8]) -> String {
        struct Body: Decodable {
            struct E: Decodable { var code: String?; var message: String? }
            var errors: [E]?
        }
        guard let b = try? JSONDecoder().decode(Body.self, from: Data(body)), let errors = b.errors, !errors.isEmpty else { return "" }
        return ": " + errors.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: " ") }.joined(separator: "; ")
    }

    private func isTransientCurl(_ code: Int32) -> Bool { cc_is_transient(code) != 0 }
    /// libcurl's CURLE_COULDNT_CONNECT: refused, or no route.
    static let curlCouldNotConnect: Int32 = 7

    private func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(b)))
            default:
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
