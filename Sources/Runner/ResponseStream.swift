import RunnerOS
import Synchronization

/// A function's answer on its way to the client while the function is still writing it. Fn
/// buffered whole responses; this passes the head on as soon as the function sent it, then the
/// body as it arrives.
///
/// The task reading the function produces (`begin`, `write`); the HTTP edge consumes
/// (`start`, `next`). It is bounded: past `limitBytes` not yet taken, the reader waits, so a
/// slow client slows the function down instead of filling the runner's memory. A small answer
/// that arrives whole never streams: the call returns it as usual and `start` says `.whole`.
///
/// Made with a sink (`init(delivering:)`), it has no consumer: the reader hands the head and
/// each chunk to the sink and waits until the client took it (`Agent.run(_:deliveringTo:)`).
public final class ResponseStream: Sendable {
    public enum Start: Sendable {
        /// The head (status 200, the function's headers) and the body bytes read so far.
        case streaming(FunctionResponse)
        /// The call ended without streaming: its result is the whole answer (or its error).
        case whole
    }

    private struct State {
        var pending: [UInt8] = []
        var ended = false
        var error: RunnerError?
        var cancelled = false
        /// The head went to the sink.
        var delivered = false
        /// The consumer waits on it when nothing is pending.
        var dataArrived: AsyncEvent?
        /// The producer waits on it while the client is `limitBytes` behind.
        var drained: AsyncEvent?
    }

    public let limitBytes: Int
    /// Nil with a sink: nobody waits for the start.
    private let started: AsyncValue<Start>?
    private let state = Mutex(State())
    private let sink: (any CallEventSink)?

    public init(limitBytes: Int = 256 << 10) {
        self.limitBytes = max(1, limitBytes)
        started = AsyncValue()
        sink = nil
    }

    /// A stream with no consumer: what the function writes goes to `sink` as it arrives.
    public init(delivering sink: any CallEventSink) {
        limitBytes = 1
        started = nil
        self.sink = sink
    }

    /// Whether the head went to the sink (the answer streams).
    var hasDelivered: Bool { state.withLock { $0.delivered } }

    // MARK: producer (the task reading the function)

    /// The function sent a 200 head and its body is on the way.
    public func begin(_ head: FunctionResponse) async throws(RunnerError) {
        let cancelled = state.withLock { s -> Bool in
            if !s.cancelled && sink != nil { s.delivered = true }
            return s.cancelled
        }
        if cancelled { throw CallErrors.cancelled("stream response") }
        guard let sink else { return started?.set(.streaming(head)) ?? () }
        try await sink.deliver(.head(head, complete: false), deadlineNanos: .max)
    }

    /// More body; waits while the client is `limitBytes` behind, until `deadlineNanos`
    /// (MonotonicClock). Throws once the client went away or the task was cancelled.
    public func write(_ bytes: ArraySlice<UInt8>, deadlineNanos: UInt64) async throws(RunnerError) {
        if bytes.isEmpty { return }
        if let sink {
            if Task.isCancelled || state.withLock({ $0.cancelled }) { throw CallErrors.cancelled("stream response") }
            return try await sink.deliver(.body(Array(bytes)), deadlineNanos: deadlineNanos)
        }
        var wake: AsyncEvent?
        var drained = try state.withLock { s throws(RunnerError) -> AsyncEvent? in
            if s.cancelled { throw CallErrors.cancelled("stream response") }
            s.pending.append(contentsOf: bytes)
            wake = s.dataArrived
            s.dataArrived = nil
            return Self.drainedEvent(&s, limitBytes)
        }
        wake?.fire()
        while let event = drained {
            let now = MonotonicClock.nowNanos()
            if now >= deadlineNanos { throw RunnerError(.timeout, "the client did not take the answer in time", step: "stream response") }
            _ = await raceWithTimeout(.nanoseconds(Int64(deadlineNanos - now)), { await event.wait() })
            if Task.isCancelled { throw CallErrors.cancelled("stream response") }
            drained = try state.withLock { s throws(RunnerError) -> AsyncEvent? in
                if s.cancelled { throw CallErrors.cancelled("stream response") }
                return Self.drainedEvent(&s, limitBytes)
            }
        }
    }

    /// What the producer waits on while more than `limit` bytes are pending; nil when not.
    private static func drainedEvent(_ s: inout State, _ limit: Int) -> AsyncEvent? {
        guard s.pending.count > limit else {
            s.drained = nil
            return nil
        }
        if let e = s.drained, !e.hasFired { return e }
        let e = AsyncEvent()
        s.drained = e
        return e
    }

    /// The call ended: with `error` when it failed (after streaming began, the client's answer
    /// is cut off rather than completed).
    public func end(_ error: RunnerError?) {
        let wake = state.withLock { s -> AsyncEvent? in
            s.ended = true
            s.error = error
            defer { s.dataArrived = nil }
            return s.dataArrived
        }
        started?.set(.whole)  // no effect once streaming began
        wake?.fire()
    }

    // MARK: consumer (the HTTP edge)

    /// Whether the answer streams, once that is known.
    public func start() async -> Start { await started?.waitIgnoringCancellation() ?? .whole }

    /// The body bytes that arrived since the last call; nil at the end. Throws the call's error
    /// when it ended badly, and `callCancelled` when the consuming task was cancelled.
    public func next() async throws(RunnerError) -> [UInt8]? {
        while true {
            var drained: AsyncEvent?
            let (chunk, wait) = try state.withLock { s throws(RunnerError) -> ([UInt8]?, AsyncEvent?) in
                if !s.pending.isEmpty {
                    defer {
                        s.pending = []
                        drained = s.drained
                        s.drained = nil
                    }
                    return (s.pending, nil)
                }
                if s.ended {
                    if let e = s.error { throw e }
                    return (nil, nil)
                }
                let event = AsyncEvent()
                s.dataArrived = event
                return (nil, event)
            }
            drained?.fire()
            guard let wait else { return chunk }
            if await wait.wait() == nil {
                cancel()
                throw CallErrors.cancelled("stream response")
            }
        }
    }

    /// The client went away: the reader stops at its next write.
    public func cancel() {
        let drained = state.withLock { s -> AsyncEvent? in
            s.cancelled = true
            defer { s.drained = nil }
            return s.drained
        }
        drained?.fire()
    }
}
