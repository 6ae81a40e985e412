import RunnerOS

/// Hooks around every call (Fn's BeforeCall/AfterCall): quotas, audit, the store writing the
/// call record. A `beforeCall` error fails the call before it runs; an `afterCall` error
/// replaces the call's result. A call that ended before it started (busy, shutdown, a failed
/// launch, a client that left) gets `afterCall` only, and its error stands.
public protocol CallListener: Sendable {
    func beforeCall(_ call: Call) async throws(RunnerError)
    func afterCall(_ call: Call) async throws(RunnerError)
}
