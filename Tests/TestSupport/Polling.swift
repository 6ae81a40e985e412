import RunnerOS

/// Polls `condition` every 10 ms for up to `timeoutMillis`; throws `.timeout` when it never holds.
public func waitUntil(timeoutMillis: Int = 10_000, _ condition: () throws -> Bool) async throws {
    let deadline = MonotonicClock.nowNanos() + UInt64(timeoutMillis) * 1_000_000
    while try !condition() {
        if MonotonicClock.nowNanos() > deadline { throw RunnerError(.timeout, "condition not met in \(timeoutMillis) ms") }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
}

/// How long a helper process a test starts (most are Python) may take to say it is ready: over
/// 10 s in the first minute of a full run on a fresh clone under two CPU hogs. A wait with it
/// still ends as soon as the process is ready.
public let helperStartMillis = 60_000

/// `waitUntil` for a condition that must itself wait (an HTTP request, say).
public func pollUntil(timeoutMillis: Int = 10_000, _ condition: () async throws -> Bool) async throws {
    let deadline = MonotonicClock.nowNanos() + UInt64(timeoutMillis) * 1_000_000
    while try await !condition() {
        if MonotonicClock.nowNanos() > deadline { throw RunnerError(.timeout, "condition not met in \(timeoutMillis) ms") }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
}
