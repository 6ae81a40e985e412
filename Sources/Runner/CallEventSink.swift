import RunnerOS

/// Where a call run in its edge's own task (`Agent.run(_:deliveringTo:)`) sends its events as
/// they happen, instead of a second task running the call while the edge waits for the events.
///
/// On a warm call that saves the task, its hand-offs and the wait for its end, on the event
/// loop that is an edge's bottleneck. The events and their order are `CallExecution`'s.
public protocol CallEventSink: Sendable {
    /// Called in the call's task. A streamed head or body chunk returns once the client took
    /// it (a slow client slows the function down, not the runner's memory), and throws
    /// `.timeout` when that is not by `deadlineNanos` (MonotonicClock), or `callCancelled`
    /// when the client went away. The call's last events (`.head(_, complete: true)`, `.end`)
    /// have no deadline, and their errors are not the call's.
    func deliver(_ event: CallEvent, deadlineNanos: UInt64) async throws(RunnerError)
}
