import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Runner
import RunnerOS
import RunnerStore

/// Fn's v2 API over the store and the agent: `/v2/apps`, `/v2/fns`, `/v2/triggers`, the call
/// records Fn later dropped (`/v2/fns/{id}/calls…`), `POST /invoke/{fn_id}`, HTTP triggers under
/// `/t/{app}/…`, and `/`, `/version`, `/health`.
public struct FnAPI: Sendable {
    public struct Configuration: Sendable {
        /// FN_MAX_REQUEST_SIZE: the largest request body (→ 413); also bounds API bodies.
        public var maxRequestBytes = 6 << 20
        /// FN_PUBLIC_LB_URL: where clients reach this node, for the endpoint annotations and the
        /// request URL a function is told. Nil: taken from each request's Host, as Fn does.
        public var publicURL: String?
        public var version = FnrunnerVersion.current
        /// FN_CLIENT_IDLE_TIMEOUT_MSECS: how long a client connection may send nothing while a
        /// request's head or body is being read, or while it waits kept-alive between requests,
        /// before it is closed (a call already running is never cut by it). 0 turns it off.
        public var clientIdleTimeoutMillis = 60_000
        /// The networks a function may ask for with `fnrunner.io/network` on this node.
        public var functionNetworks: Set<String> = ["none", "bridge"]
        /// The node traces: every request gets a span (the caller's `traceparent` honoured),
        /// which a call's span is a child of.
        public var tracesRequests = false

        public init() {}
    }

    let configuration: Configuration
    let store: Store
    let agent: Agent
    /// Flushed before the calls API reads, so a finished call is always listed.
    let recorder: StoreRecorder?
    /// Takes detached calls (`Fn-Invoke-Type: detached`); without it they are refused (501).
    let detachedCalls: AsyncCallConsumer?
    let logger: Logger
    /// What each fn is to the agent, made once per version of the fn and its app.
    let definitions = DefinitionCache()

    public init(
        configuration: Configuration, store: Store, agent: Agent, recorder: StoreRecorder? = nil,
        detachedCalls: AsyncCallConsumer? = nil, logger: Logger = Logger(label: "fnrunner.api")
    ) {
        self.configuration = configuration
        self.store = store
        self.agent = agent
        self.recorder = recorder
        self.detachedCalls = detachedCalls
        self.logger = logger
    }

    /// HTTP/1.1 for this API: the client idle timeout, so half-open and stalled connections do
    /// not pile up; a watcher on every connection, so a call learns when its client left; and
    /// invokes and triggers answered on their connection's event loop (`InvokeChannelHandler`).
    public var server: HTTPServerBuilder {
        let idleMillis = configuration.clientIdleTimeoutMillis
        let http1 = HTTP1Channel.Configuration(idleTimeout: idleMillis > 0 ? .milliseconds(Int64(idleMillis)) : nil)
        return HTTPServerBuilder { [self] responder in
            FnHTTP1Channel(http1: HTTP1Channel(responder: responder, configuration: http1), api: self)
        }
    }

    /// Every path the router serves (for Fn's 405 on a known path with another method).
    static let routePaths = [
        "/", "/version", "/health", "/metrics", "/v2/apps", "/v2/apps/:", "/v2/fns", "/v2/fns/:", "/v2/fns/:/calls",
        "/v2/fns/:/calls/:", "/v2/fns/:/calls/:/log", "/v2/triggers", "/v2/triggers/:", "/v2/runner/containers", "/invoke/:",
        "/t/:", "/t/:/**",
    ]

    /// The router with every route.
    public func router() -> Router<FnRequestContext> {
        let router = Router(context: FnRequestContext.self)
        if configuration.tracesRequests { router.add(middleware: TracingMiddleware()) }
        router.add(middleware: UnknownRouteMiddleware(paths: Self.routePaths))
        router.get("/") { _, _ in try Self.json(["goto": "https://github.com/fnproject/fn", "hello": "world!"]) }
        router.get("/version") { _, _ in try Self.json(["version": configuration.version]) }
        router.get("/health") { _, _ in try Self.json(["status": "ok"]) }
        addApps(to: router)
        addFns(to: router)
        addTriggers(to: router)
        addCalls(to: router)
        addInvoke(to: router)
        addMetrics(to: router)
        return router
    }

    // MARK: shared helpers

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    /// The request body, refused (413) past the limit: at once when the declared length is over
    /// it, without waiting for a body that may never come.
    func body(_ request: Request) async throws -> [UInt8] {
        try refuseDeclaredOversize(request)
        var request = request
        do {
            let buffer = try await request.collectBody(upTo: configuration.maxRequestBytes)
            return Array(buffer.readableBytesView)
        } catch let e as any HTTPResponseError where e.status == .contentTooLarge {
            throw CallErrors.requestTooLarge("read request")
        }
    }

    /// 413 for a Content-Length over FN_MAX_REQUEST_SIZE, before any of the body is read.
    func refuseDeclaredOversize(_ request: Request) throws {
        if let declared = request.headers[.contentLength], let n = UInt64(declared), n > UInt64(configuration.maxRequestBytes) {
            throw CallErrors.requestTooLarge("read request")
        }
    }

    /// Decodes a JSON object body into `T`. As Fn's server: fields `T` does not know are
    /// ignored, and anything that does not decode is "Invalid JSON".
    func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let bytes = try await body(request)
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw APIErrors.badJSON(error)
        }
    }

    static func query(_ request: Request, _ name: String) -> String? {
        request.uri.queryParameters.get(name).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// per_page as Fn reads it (30 when missing, not a number or not positive; at most 100) and
    /// the cursor (opaque: URL-safe base64 of where the last page ended).
    static func paging(_ request: Request) throws(RunnerError) -> (cursor: String?, perPage: Int) {
        var perPage = 30
        if let text = query(request, "per_page"), let n = Int(text), n > 0 { perPage = min(n, 100) }
        var cursor: String?
        if let text = query(request, "cursor") {
            guard let data = decodeBase64URL(text), let position = String(data: data, encoding: .utf8) else {
                throw Validation.invalid("invalid cursor")
            }
            cursor = position
        }
        return (cursor, perPage)
    }

    /// Base64 in the URL alphabet without padding (Go's RawURLEncoding, as Fn's cursors), or the
    /// standard alphabet with padding.
    static func decodeBase64URL(_ text: String) -> Data? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard)
    }

    static func encodeBase64URL(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func list<T: Encodable>(_ page: Page<T>) throws -> Response {
        try json(ListBody(items: page.items, nextCursor: page.nextCursor.map(encodeBase64URL)))
    }

    static func now() -> String { WallClock.rfc3339(WallClock.nowNanos(), millis: true) }

    static func parameter(_ context: FnRequestContext, _ name: String) throws -> String {
        guard let v = context.parameters.get(name), !v.isEmpty else { throw Validation.invalid("missing \(name)") }
        return v
    }
}
