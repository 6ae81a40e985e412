import RunnerOS

/// The time every agent rule is measured in: waits for slots and tokens, freeze and idle
/// timers, call deadlines, the launcher timeout. Injectable, so the rules can be tested with a
/// clock the test moves instead of waiting for real.
public protocol AgentClock: Sendable {
    /// Monotonic nanoseconds.
    var nowNanos: UInt64 { get }
    /// Returns at `deadline` (or at once if it has passed); throws `CancellationError` when the
    /// task is cancelled first.
    func sleep(untilNanos deadline: UInt64) async throws
    /// Runs `fire` once at `deadline` (at once if it has passed) unless the timer is cancelled
    /// first. For the waits a container sets again and again (its idle and freeze timers):
    /// a timer costs no task, where a `sleep` raced against the wait costs a task group.
    /// `fire` must be short and must not block: it resumes a waiter.
    func schedule(atNanos deadline: UInt64, _ fire: @escaping @Sendable () -> Void) -> AgentTimer
}

/// A timer of an `AgentClock`.
public struct AgentTimer: Sendable {
    private let cancelTimer: @Sendable () -> Void

    public init(cancel: @escaping @Sendable () -> Void) { cancelTimer = cancel }

    /// It does not fire after this returns, unless it was firing already. Idempotent.
    public func cancel() { cancelTimer() }
}

extension AgentClock {
    /// `now + duration`, for deadlines.
    public func nanos(after duration: Duration) -> UInt64 {
        nowNanos &+ duration.nanoseconds
    }
}

/// The host's monotonic clock.
public struct SystemClock: AgentClock {
    public init() {}
    public var nowNanos: UInt64 { MonotonicClock.nowNanos() }
    public func sleep(untilNanos deadline: UInt64) async throws {
        let now = MonotonicClock.nowNanos()
        if deadline > now { try await Task.sleep(nanoseconds: deadline - now) }
        try Task.checkCancellation()
    }
    /// On the readiness loop's thread, which already sleeps until the earliest deadline of the
    /// function waits.
    public func schedule(atNanos deadline: UInt64, _ fire: @escaping @Sendable () -> Void) -> AgentTimer {
        let timer = ReadinessLoop.shared.schedule(atNanos: deadline, fire)
        return AgentTimer(cancel: timer.cancel)
    }
}

extension Duration {
    /// Whole nanoseconds, 0 for negative durations, saturating at UInt64.max.
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (sum, overflow2) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return overflow2 ? .max : sum
    }
}
