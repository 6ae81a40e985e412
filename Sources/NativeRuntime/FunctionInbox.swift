import NIOCore
import Runner
import RunnerOS
import Synchronization

/// What a hot function's socket sent and its call has not taken yet, filled by the NIO event
/// loop that reads the socket (`FunctionInboxHandler`).
///
/// Why a loop reads it: the function's answer then wakes the loop that runs the call, not a
/// readiness thread that would wake the loop in turn. The waiting call's task is resumed from
/// the loop's own read, on its own executor, in the same loop tick: one thread and one
/// wake-up fewer per call.
///
/// Reading stops while `highWater` bytes or more wait untaken, so a function cannot make the
/// runner buffer without bound, between calls or in a call whose body streams out slower than
/// it comes in; the kernel's socket buffer then pushes back on the function.
final class FunctionInbox: Sendable {
    static let highWater = 256 << 10
    /// An inbox that held more than this gives its memory back once emptied.
    static let keptCapacity = 16 << 10

    private struct State {
        var bytes: [UInt8] = []
        var ended = false
        var failure: RunnerError?
        var waiter: CheckedContinuation<Void, Never>?
        /// Numbers the waits, so that a timer or a cancellation meant for an earlier wait
        /// cannot end a later one.
        var waitNumber: UInt64 = 0
        var woken: Wake?
        /// The handler held a read back for a full inbox.
        var readHeld = false
        var drained: (@Sendable () -> Void)?
        /// A wait is in progress, until `deadline` (MonotonicClock).
        var waiting = false
        var deadline: UInt64 = .max
        /// When the armed timer fires, if one is armed. It serves every wait whose deadline is
        /// not earlier: firing during a later wait, it is armed again for that wait's deadline.
        /// Calls in a row then cost no timer each.
        var timerAt: UInt64?
    }

    enum Wake {
        case data, timedOut, cancelled
    }

    private let state = Mutex(State())

    /// What lets a held-back read go once a call emptied the inbox; nil when the channel ends.
    func onDrained(_ action: (@Sendable () -> Void)?) { state.withLock { $0.drained = action } }

    /// The handler's side: bytes arrived.
    func received(_ buffer: ByteBuffer) {
        let waiter = state.withLock { s in
            buffer.withUnsafeReadableBytes { s.bytes.append(contentsOf: $0) }
            return wake(&s, .data)
        }
        waiter?.resume()
    }

    /// The handler's side: the socket ended, cleanly (nil) or with an error; told again, it
    /// keeps the first error. Bytes that came before are still taken first.
    func ended(_ failure: RunnerError?) {
        let waiter = state.withLock { s in
            s.ended = true
            if s.failure == nil { s.failure = failure }
            return wake(&s, .data)
        }
        waiter?.resume()
    }

    /// The handler's side, asked before each read: true holds it back until a call drains
    /// the inbox.
    func holdRead() -> Bool {
        state.withLock { s in
            guard s.bytes.count >= Self.highWater else { return false }
            s.readHeld = true
            return true
        }
    }

    /// What arrived so far and no call took.
    var bufferedBytes: Int { state.withLock { $0.bytes.count } }

    private func wake(_ s: inout State, _ reason: Wake) -> CheckedContinuation<Void, Never>? {
        guard let w = s.waiter else { return nil }
        s.waiter = nil
        s.woken = reason
        return w
    }

    /// Moves what arrived to the end of `buffer`, waiting first when nothing has: false when
    /// the function closed its end and nothing is left. Throws `timedOut()` at `deadlineNanos`
    /// (MonotonicClock), `cancelled()` when the task is cancelled, and the socket's error when
    /// it failed.
    func take(
        into buffer: inout [UInt8], deadlineNanos: UInt64, timedOut: () -> RunnerError, cancelled: () -> RunnerError
    ) async throws(RunnerError) -> Bool {
        while true {
            let (took, release, failure) = state.withLock { s -> (Bool?, (@Sendable () -> Void)?, RunnerError?) in
                if !s.bytes.isEmpty {
                    if buffer.isEmpty {
                        swap(&buffer, &s.bytes)
                    } else {
                        buffer.append(contentsOf: s.bytes)
                        s.bytes.removeAll(keepingCapacity: true)
                    }
                    if s.bytes.capacity > Self.keptCapacity { s.bytes = [] }
                    guard s.readHeld else { return (true, nil, nil) }
                    s.readHeld = false
                    return (true, s.drained, nil)
                }
                return s.ended ? (false, nil, s.failure) : (nil, nil, nil)
            }
            release?()
            if let failure { throw failure }
            if let took { return took }
            if Task.isCancelled { throw cancelled() }
            if MonotonicClock.nowNanos() >= deadlineNanos { throw timedOut() }
            switch await wait(until: deadlineNanos) {
            case .data: continue
            case .timedOut: throw timedOut()
            case .cancelled: throw cancelled()
            }
        }
    }

    /// Waits for bytes or the end, the deadline, or the task's cancellation.
    private func wait(until deadlineNanos: UInt64) async -> Wake {
        let (number, arm) = state.withLock { s -> (UInt64, Bool) in
            s.waitNumber &+= 1
            s.woken = nil
            s.waiting = true
            s.deadline = deadlineNanos
            if let at = s.timerAt, at <= deadlineNanos { return (s.waitNumber, false) }
            s.timerAt = deadlineNanos
            return (s.waitNumber, true)
        }
        if arm { armTimer(at: deadlineNanos) }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s in
                    if s.woken != nil || !s.bytes.isEmpty || s.ended { return true }
                    s.waiter = c
                    return false
                }
                if now { c.resume() }
            }
            return state.withLock { s in
                s.waiting = false
                return !s.bytes.isEmpty || s.ended ? .data : s.woken ?? .data
            }
        } onCancel: {
            end(number, .cancelled)
        }
    }

    /// A timer on the readiness loop; it holds the inbox weakly, as it may outlive the
    /// container by up to a call's timeout.
    private func armTimer(at deadline: UInt64) {
        _ = ReadinessLoop.shared.schedule(atNanos: deadline) { [weak self] in self?.timerFired(armedAt: deadline) }
    }

    /// Ends the wait in progress if its deadline has come; otherwise arms the timer again for
    /// it (the one that fired was armed for an earlier call). A timer that fires before its
    /// time means the readiness loop could not keep it: the wait ends then, as it would
    /// have with a timer of its own, rather than never.
    private func timerFired(armedAt: UInt64) {
        let now = MonotonicClock.nowNanos()
        let (number, rearm) = state.withLock { s -> (UInt64?, UInt64?) in
            if s.timerAt == armedAt { s.timerAt = nil }
            guard s.waiting else { return (nil, nil) }
            if now >= s.deadline || now < armedAt { return (s.waitNumber, nil) }
            guard s.timerAt == nil else { return (nil, nil) }
            s.timerAt = s.deadline
            return (nil, s.deadline)
        }
        if let number { end(number, .timedOut) }
        if let rearm { armTimer(at: rearm) }
    }

    /// Ends wait `number` for `reason`, if it is still the one waiting (or about to).
    private func end(_ number: UInt64, _ reason: Wake) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard s.waitNumber == number else { return nil }
            guard s.waiter != nil else {
                if s.woken == nil { s.woken = reason }
                return nil
            }
            return wake(&s, reason)
        }
        waiter?.resume()
    }
}
