import RunnerOS
import Tracing

/// A call's span, and the spans of its phases, when the node traces (serve with an OTLP
/// endpoint). Phases are timed on the call's path as plain monotonic readings and become
/// spans only afterwards, so the path never waits for the tracer, and a node that does not
/// trace pays one nil check per phase.
///
/// The call's span is a child of the context it was made in (the API request's span, with the
/// caller's `traceparent` honoured there, or the load balancer's context on the gRPC edge).
/// The `function` span is started live, because its context is what the function is given as
/// `traceparent`, so that the function's own spans join the trace.
public final class CallTrace: Sendable {
    /// Where a call's span hangs.
    public enum Parent: Sendable {
        /// The context the call is made in: the API request's span (the caller's
        /// `traceparent` honoured there), or the LB's on the gRPC edge.
        case current
        /// The `traceparent` among the request's own headers: a detached call runs after the
        /// request that queued it has ended, and joins its caller's trace this way.
        case requestHeaders
        /// None: the call is only queued here (it is traced when it runs).
        case untraced
    }

    let tracer: any Tracer
    let span: any Span
    /// Wall clock minus monotonic clock, read once, so that every phase of the call converts
    /// alike (a phase never ends before it starts, whatever the wall clock does meanwhile).
    let wallOffset: UInt64

    init(tracer: any Tracer, parent: ServiceContext, call id: String, function f: FunctionDefinition) {
        self.tracer = tracer
        let offset = WallClock.nowNanos() &- MonotonicClock.nowNanos()
        wallOffset = offset
        span = tracer.startSpan(
            "fn call", context: parent, ofKind: .internal,
            at: DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: MonotonicClock.nowNanos() &+ offset))
        span.updateAttributes { a in
            a["fn.call.id"] = id
            a["fn.app.id"] = f.appID
            a["fn.fn.id"] = f.fnID
            a["fn.image"] = f.image
            a["fn.format"] = f.format
        }
    }

    public var context: ServiceContext { span.context }

    /// The parent context for a call's span; nil when it is not to be traced.
    static func parentContext(_ parent: Parent, tracer: any Tracer, request: FunctionRequest) -> ServiceContext? {
        switch parent {
        case .current: return ServiceContext.current ?? .topLevel
        case .untraced: return nil
        case .requestHeaders:
            var context = ServiceContext.topLevel
            tracer.extract(request.headers, into: &context, using: HeaderListExtractor())
            return context
        }
    }

    /// A finished phase as a child of `parent` (the call's span by default); returns the
    /// child's context, for phases within it.
    @discardableResult
    func phase(
        _ name: String, from start: UInt64, to end: UInt64, parent: ServiceContext? = nil, attributes: SpanAttributes = [:],
        failed: Bool = false
    ) -> ServiceContext {
        let child = tracer.startSpan(name, context: parent ?? span.context, ofKind: .internal, at: instant(start))
        if !attributes.isEmpty { child.updateAttributes { $0.merge(attributes) } }
        if failed { child.setStatus(SpanStatus(code: .error)) }
        child.end(at: instant(end))
        return child.context
    }

    /// A container's start (`container start`, with `image`, the sandbox's own phases, and
    /// `listener ready` inside), from the phases the driver recorded.
    package func containerStart(_ phases: [TimedPhase], container: String, sandbox: [TimedPhase]) {
        guard let first = phases.first, let last = phases.last else { return }
        let start = phase("container start", from: first.start, to: last.end, attributes: ["fn.container": .string(container)])
        for p in phases {
            if p.name == "sandbox" && !sandbox.isEmpty {
                for s in sandbox { phase(s.name, from: s.start, to: s.end, parent: start) }
            } else {
                phase(p.name == "ready" ? "listener ready" : p.name, from: p.start, to: p.end, parent: start)
            }
        }
    }

    /// Starts the span of the function's own answer and names it in the function's request
    /// headers as their W3C `traceparent`, replacing any the caller sent (that was the parent).
    func startFunction(container: String, headers: inout [(String, String)]) -> any Span {
        let s = tracer.startSpan("function", context: span.context, ofKind: .client, at: now)
        s.attributes["fn.container"] = container
        headers.removeAll { ["traceparent", "tracestate"].contains($0.0.lowercased()) }
        tracer.inject(s.context, into: &headers, using: HeaderListInjector())
        return s
    }

    /// Ends the call's span with its outcome.
    func end(status: String, error: RunnerError?) {
        span.attributes["fn.call.status"] = status
        if let error {
            span.setStatus(SpanStatus(code: .error, message: error.message))
        }
        span.end(at: now)
    }

    /// Ends a span started with `startFunction`, on the call's clock.
    func finish(_ span: any Span) { span.end(at: now) }

    var now: DefaultTracerClock.Timestamp { instant(MonotonicClock.nowNanos()) }

    /// A monotonic reading as a wall-clock instant.
    func instant(_ monotonic: UInt64) -> DefaultTracerClock.Timestamp {
        DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: monotonic &+ wallOffset)
    }
}

/// Writes propagation headers into a function request's header list.
struct HeaderListInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout [(String, String)]) {
        headers.append((key, value))
    }
}

/// Reads propagation headers from a header list (a queued request's own headers).
struct HeaderListExtractor: Extractor {
    func extract(key: String, from headers: [(String, String)]) -> String? {
        headers.first { $0.0.lowercased() == key.lowercased() }?.1
    }
}
