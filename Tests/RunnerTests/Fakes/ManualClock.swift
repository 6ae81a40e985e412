@testable import Runner
import Synchronization

/// A clock that moves only when a test moves it: the agent's timers (freeze, idle, poll, wait,
/// launcher) fire exactly when the test says, so the rules are tested in milliseconds of real
/// time and without races against the wall clock.
final class ManualClock: AgentClock {
    private struct Sleeper {
        let deadline: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var now: UInt64 = 1_000_000_000
        var sleepers: [UInt64: Sleeper] = [:]
        var timers: [UInt64: (deadline: UInt64, fire: @Sendable () -> Void)] = [:]
        var nextID: UInt64 = 0
        var scheduled = 0
    }
    private let state = Mutex(State())

    var nowNanos: UInt64 { state.withLock { $0.now } }

    /// Tasks sleeping on this clock now, and timers not fired yet.
    var sleeperCount: Int { state.withLock { $0.sleepers.count + $0.timers.count } }

    /// Timers asked for so far (also those due at once): each is a wait of a container's task.
    var scheduled: Int { state.withLock { $0.scheduled } }

    func schedule(atNanos deadline: UInt64, _ fire: @escaping @Sendable () -> Void) -> AgentTimer {
        let id = state.withLock { s -> UInt64? in
            s.scheduled += 1
            if deadline <= s.now { return nil }
            s.nextID += 1
            s.timers[s.nextID] = (deadline, fire)
            return s.nextID
        }
        guard let id else {
            fire()
            return AgentTimer {}
        }
        return AgentTimer { [self] in _ = state.withLock { $0.timers.removeValue(forKey: id) } }
    }

    func sleep(untilNanos deadline: UInt64) async throws {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let due = state.withLock { s -> Bool in
                    if deadline <= s.now { return true }
                    s.sleepers[id] = Sleeper(deadline: deadline, continuation: c)
                    return false
                }
                if due { c.resume() }
                if Task.isCancelled { cancel(id) }
            }
        } onCancel: {
            cancel(id)
        }
    }

    private func cancel(_ id: UInt64) {
        let s = state.withLock { $0.sleepers.removeValue(forKey: id) }
        s?.continuation.resume(throwing: CancellationError())
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    func advance(by d: Duration) {
        let (due, timers) = state.withLock { s -> ([Sleeper], [@Sendable () -> Void]) in
            s.now &+= d.nanoseconds
            let due = s.sleepers.filter { $0.value.deadline <= s.now }
            for id in due.keys { s.sleepers[id] = nil }
            let timers = s.timers.filter { $0.value.deadline <= s.now }
            for id in timers.keys { s.timers[id] = nil }
            return (due.values.sorted { $0.deadline < $1.deadline }, timers.values.sorted { $0.deadline < $1.deadline }.map(\.fire))
        }
        for fire in timers { fire() }
        for s in due { s.continuation.resume() }
    }
}

/// Waits (in real time, polling) until `condition` holds; records an issue after `seconds`.
/// Generous, since the bound only catches a hang: the agent under a fake clock needs real CPU
/// time to react, and in the first minute of a full run on a fresh clone under two CPU hogs
/// (every suite starting at once, the fixtures being built) it got too little for 30 s.
func eventually(
    _ what: String, within seconds: Double = 120, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
) async {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() {
        if ContinuousClock.now > deadline {
            Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
            return
        }
        try? await Task.sleep(for: .milliseconds(1))
    }
}

/// Advances `clock` `times` times by `step`, giving the agent a few milliseconds of real time
/// after each step to react.
func step(_ clock: ManualClock, by step: Duration, times: Int) async {
    for _ in 0..<times {
        clock.advance(by: step)
        try? await Task.sleep(for: .milliseconds(5))
    }
}

/// Advances `clock` in `step`s until `condition` holds. After each step the agent gets up to
/// 100 ms of real time to react before the next one: under a loaded test run a task can take
/// that long to be scheduled, and a step taken before it set its timer would move its deadline.
func advance(_ clock: ManualClock, by step: Duration, until what: String, maxSteps: Int = 1000, _ condition: () -> Bool) async {
    for _ in 0..<maxSteps {
        if condition() { return }
        clock.advance(by: step)
        let settle = ContinuousClock.now + .milliseconds(100)
        while !condition() && ContinuousClock.now < settle { try? await Task.sleep(for: .milliseconds(1)) }
    }
    if !condition() { Issue.record("clock moved \(maxSteps) × \(step) but still not: \(what)") }
}

import Testing
