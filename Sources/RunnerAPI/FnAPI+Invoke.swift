import Foundation
import HTTPTypes
import Hummingbird
import Runner
import RunnerOS
import RunnerStore

/// `POST /invoke/{fn_id}` and HTTP triggers `/t/{app}/{source…}`, and the call records.
extension FnAPI {
    static let triggerMethods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .head, .options]

    func addInvoke(to router: Router<FnRequestContext>) {
        router.post("/invoke/:fn_id") { request, context in
            try await invoke(fnID: try Self.parameter(context, "fn_id"), request, context)
        }
        for method in Self.triggerMethods {
            router.on("/t/:app_name", method: method) { request, context in
                try await trigger(appName: try Self.parameter(context, "app_name"), source: "/", request, context)
            }
            router.on("/t/:app_name/**", method: method) { request, context in
                let source = "/" + context.parameters.getCatchAll().joined(separator: "/")
                return try await trigger(appName: try Self.parameter(context, "app_name"), source: source, request, context)
            }
        }
    }

    func invoke(fnID: String, _ request: Request, _ context: FnRequestContext) async throws -> Response {
        let definition = try await invoked(fnID)
        let functionRequest = invokeRequest(request.head, body: try await body(request))
        if Self.isDetached(request) { return try await acceptDetached(definition, functionRequest) }
        return try await respond(definition, functionRequest, context, shape: Self.invokeHead)
    }

    /// The fn an invoke names, its app, and the agent's view of them: one cached lookup while
    /// no fn or app changed (`DefinitionCache.invoked`).
    func invoked(_ fnID: String) async throws(RunnerError) -> DefinitionCache.Definition {
        try await definitions.invoked(fnID, in: store)
    }

    /// An invoke as its function gets it: every header of the client's, the URL it asked for.
    func invokeRequest(_ head: HTTPRequest, body: [UInt8]) -> FunctionRequest {
        var headers: [(String, String)] = []
        headers.reserveCapacity(head.headerFields.count)
        for field in head.headerFields { headers.append((field.name.rawName, field.value)) }
        return FunctionRequest(
            method: "POST", url: baseURL(authority: head.authority) + (head.path ?? ""), contentType: head.headerFields.value(.contentType),
            headers: headers, body: body)
    }

    /// Fn's invoke answer: 200 and the function's headers (but hop-by-hop ones), named as Go
    /// names them. An http-stream function's own status travels in `Fn-Http-Status` (a
    /// success is always 200 on its wire); a stdio-format function's status is its own.
    static func invokeHead(_ r: FunctionResponse) -> (HTTPResponse.Status, HTTPFields) {
        var out = HTTPFields()
        // One name made per header: the canonical one. A name that is no token makes none, and
        // the header is dropped, as before.
        for h in r.headers where HopByHop.isPassedOn(h.name) {
            if let name = HTTPField.Name(GoHeaderName.canonical(h.name)) { out.append(HTTPField(name: name, value: h.value)) }
        }
        return (HTTPResponse.Status(code: r.status), out)
    }

    func trigger(appName: String, source: String, _ request: Request, _ context: FnRequestContext) async throws -> Response {
        let definition = try await triggered(appName: appName, source: source)
        let (functionRequest, shape) = triggerRequest(request.head, fn: definition.fn, body: try await body(request))
        if Self.isDetached(request) { return try await acceptDetached(definition, functionRequest) }
        return try await respond(definition, functionRequest, context, shape: shape)
    }

    /// The app and fn an HTTP trigger request goes to (cached reads: usually no database read),
    /// and the agent's view of them.
    func triggered(appName: String, source: String) async throws(RunnerError) -> DefinitionCache.Definition {
        let route = try await store.route(appName: appName, type: "http", source: source)
        return definitions.definition(app: route.app, fn: try await store.fn(id: route.trigger.fnID))
    }

    /// A trigger request as `fn` gets it, and how its answer is shaped.
    func triggerRequest(_ head: HTTPRequest, fn: Fn, body: [UInt8]) -> (FunctionRequest, AnswerShape) {
        var headers: [(String, String)] = []
        let wrapped = fn.format == FunctionFormat.httpStream.rawValue
        let url = baseURL(authority: head.authority) + (head.path ?? "")
        if wrapped {
            // Fn's trigger encapsulation: the client's headers as Fn-Http-H-*, its method and URL.
            for field in head.headerFields where Self.forwardable(field.name) && field.name != .contentType {
                headers.append(("Fn-Http-H-\(field.name.rawName)", field.value))
            }
            headers += [("Fn-Http-Method", head.method.rawValue), ("Fn-Http-Request-Url", url), ("Fn-Intent", "httprequest")]
        } else {
            // The stdio and cold formats predate triggers: their functions read the request as
            // a route passed it (method and URL in the format's own fields) and answer with their
            // own status and headers.
            for field in head.headerFields { headers.append((field.name.rawName, field.value)) }
        }
        let request = FunctionRequest(
            method: head.method.rawValue, url: url, contentType: head.headerFields.value(.contentType), headers: headers, body: body)
        return (request, wrapped ? Self.triggerHead : Self.invokeHead)
    }

    /// The status and headers of an answer, made from the function's head.
    typealias AnswerShape = @Sendable (FunctionResponse) -> (HTTPResponse.Status, HTTPFields)

    /// Fn's trigger answer: the status from Fn-Http-Status, the Fn-Http-H-* headers without
    /// their prefix, Content-Type; every other function header dropped.
    static func triggerHead(_ r: FunctionResponse) -> (HTTPResponse.Status, HTTPFields) {
        var out = HTTPFields()
        var status = HTTPResponse.Status.ok
        for h in r.headers {
            if h.name == "content-type" {
                out[.contentType] = h.value
            } else if h.name == "fn-http-status", let code = Int(h.value), (100...999).contains(code) {
                status = HTTPResponse.Status(code: code)
            } else if h.name.hasPrefix("fn-http-h-"), let name = HTTPField.Name(GoHeaderName.canonical(String(h.name.dropFirst(10)))),
                forwardable(name)
            {
                out.append(HTTPField(name: name, value: h.value))
            }
        }
        return (status, out)
    }

    /// The agent's view of a fn: the app's config under the fn's, and the app's prewarm
    /// annotation when the fn has none of its own.
    static func definition(app: App, fn: Fn) -> FunctionDefinition {
        var annotations = fn.annotations.mapValues(\.jsonText)
        let prewarm = FunctionDefinition.prewarmAnnotation
        if annotations[prewarm] == nil, let inherited = app.annotations[prewarm] { annotations[prewarm] = inherited.jsonText }
        return FunctionDefinition(
            appID: app.id, appName: app.name, fnID: fn.id, fnName: fn.name, image: fn.image, format: fn.format, memoryMB: fn.memory,
            cpuMillicores: fn.cpus, timeoutSeconds: fn.timeout, idleTimeoutSeconds: fn.idleTimeout, appConfig: app.config,
            fnConfig: fn.config, annotations: annotations, syslogURL: app.syslogURL)
    }

    static func isDetached(_ request: Request) -> Bool { isDetached(request.headers) }

    static func isDetached(_ headers: HTTPFields) -> Bool {
        headers.value(invokeTypeHeader).map { $0.lowercased() == "detached" } ?? false
    }

    /// A detached call: 202 with its id once it is in the durable queue (the client does not
    /// wait for it; its record and log tell how it went).
    func acceptDetached(_ d: DefinitionCache.Definition, _ request: FunctionRequest) async throws -> Response {
        guard let detachedCalls else {
            throw RunnerError(.notImplemented, "Detach call functions are not supported on this server", step: "invoke")
        }
        // Traced when it runs (from the queue, in its caller's trace), not while it is queued.
        let call = try agent.makeCall(d.function, request, type: Call.detached, slotKey: d.slotKey, traceParent: .untraced)
        try await detachedCalls.accept(call)
        var response = try Self.json(["call_id": call.id], status: .accepted)
        response.headers[Self.callIDHeader] = call.id
        return response
    }

    static let callIDHeader = HTTPField.Name("Fn-Call-Id")!
    static let invokeTypeHeader = HTTPField.Name("Fn-Invoke-Type")!

    /// Not hop-by-hop, and not one the runner sets itself.
    static func forwardable(_ name: HTTPField.Name?) -> Bool { name.map { HopByHop.isPassedOn($0.canonicalName) } ?? false }

    // MARK: call records

    func addCalls(to router: Router<FnRequestContext>) {
        router.get("/v2/fns/:fn_id/calls") { request, context in
            let fnID = try Self.parameter(context, "fn_id")
            _ = try await store.fn(id: fnID)
            await recorder?.flush()
            let (cursor, perPage) = try Self.paging(request)
            let page = try await store.calls(
                fnID: fnID, from: try Self.time(request, "from_time"), to: try Self.time(request, "to_time"), cursor: cursor,
                perPage: perPage)
            return try Self.list(page)
        }
        router.get("/v2/fns/:fn_id/calls/:call_id") { _, context in
            await recorder?.flush()
            return try Self.json(try await store.call(fnID: try Self.parameter(context, "fn_id"), id: try Self.parameter(context, "call_id")))
        }
        router.get("/v2/fns/:fn_id/calls/:call_id/log") { _, context in
            await recorder?.flush()
            let log = try await store.callLog(fnID: try Self.parameter(context, "fn_id"), id: try Self.parameter(context, "call_id"))
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: log)))
        }
    }

    /// A time bound in Unix seconds (Fn's from_time/to_time), as the stored RFC 3339 text.
    static func time(_ request: Request, _ name: String) throws(RunnerError) -> String? {
        guard let text = query(request, name) else { return nil }
        guard let seconds = UInt64(text) else { throw Validation.invalid("\(name) must be Unix seconds") }
        return WallClock.rfc3339(seconds * 1_000_000_000, millis: true)
    }
}

extension RunnerError.Code {
    /// Not supported by this server (501).
    public static let notImplemented = RunnerError.Code("not_implemented")
}
