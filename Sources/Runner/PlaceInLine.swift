import Synchronization

/// One holder's place in a line (the resource tracker's, a slot queue's): a value delivered to it
/// is kept until its holder takes it, whether or not the holder is suspended at that moment.
///
/// A holder joins the line before it starts what will feed the line (an eviction, a launch), and
/// only then waits. The value may come in between, on another thread, before the holder's task
/// has suspended; handed to the line's next waiter instead, it would go to a later comer or sit
/// unclaimed while the holder waits out its limit.
final class PlaceInLine<Value: Sendable>: Sendable {
    private enum State {
        /// In line, nobody waiting on it right now.
        case queued
        /// In line, with a wait suspended on it.
        case waiting(CheckedContinuation<Value?, Never>)
        /// Delivered, not taken yet.
        case delivered(Value)
        /// The value was taken, or the place closed: nothing more comes.
        case closed
    }
    private let state = Mutex(State.queued)

    /// Hands `value` to the holder: to its suspended wait, or kept for it. False when the place is
    /// closed or already holds a value; the caller keeps `value` then (gives it to someone else).
    func deliver(_ value: Value) -> Bool {
        let (accepted, waiter) = state.withLock { s -> (Bool, CheckedContinuation<Value?, Never>?) in
            switch s {
            case .waiting(let c):
                s = .closed
                return (true, c)
            case .queued:
                s = .delivered(value)
                return (true, nil)
            case .delivered, .closed:
                return (false, nil)
            }
        }
        waiter?.resume(returning: value)
        return accepted
    }

    /// The value, if it has been delivered; the place is closed once it is taken.
    func take() -> Value? {
        state.withLock { s -> Value? in
            guard case .delivered(let value) = s else { return nil }
            s = .closed
            return value
        }
    }

    /// Waits for the value: nil when the place is closed, or when the task is cancelled or
    /// `stopWaiting` is called (the place stays in line then). One wait at a time: the place has
    /// one holder.
    func wait() async -> Value? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Value?, Never>) in
                let ready = state.withLock { s -> Value?? in
                    switch s {
                    case .delivered(let value):
                        s = .closed
                        return .some(value)
                    case .waiting:
                        assertionFailure("a second wait on one place in line")
                        return .some(nil)
                    case .closed:
                        return .some(nil)
                    case .queued:
                        s = .waiting(c)
                        return .none
                    }
                }
                if let ready { c.resume(returning: ready) }
                if Task.isCancelled { stopWaiting() }
            }
        } onCancel: {
            stopWaiting()
        }
    }

    /// Whether a wait is suspended on the place now.
    var isWaiting: Bool {
        state.withLock { s in
            if case .waiting = s { return true }
            return false
        }
    }

    /// The state's name, for diagnostics.
    var stateName: String {
        state.withLock { s in
            switch s {
            case .queued: "queued"
            case .waiting: "waiting"
            case .delivered: "delivered"
            case .closed: "closed"
            }
        }
    }

    /// Ends the current wait with nil; the place stays in line.
    func stopWaiting() {
        let waiter = state.withLock { s -> CheckedContinuation<Value?, Never>? in
            guard case .waiting(let c) = s else { return nil }
            s = .queued
            return c
        }
        waiter?.resume(returning: nil)
    }

    /// Takes nothing more: a suspended wait returns nil and `deliver` refuses from now on, while
    /// a value delivered already stays for `close`. It takes only the place's own lock, so a
    /// cancellation handler may call it: a line delivers to its places under the line's lock,
    /// and resuming a waiting task takes the lock that task's cancellation holds while its
    /// handlers run.
    func refuse() {
        let waiter = state.withLock { s -> CheckedContinuation<Value?, Never>? in
            switch s {
            case .waiting(let c):
                s = .closed
                return c
            case .queued:
                s = .closed
                return nil
            case .delivered, .closed:
                return nil
            }
        }
        waiter?.resume(returning: nil)
    }

    /// Closes the place: a suspended wait returns nil, nothing is delivered any more. Returns a
    /// value delivered and not taken, for the caller to use or give back.
    @discardableResult
    func close() -> Value? {
        let (value, waiter) = state.withLock { s -> (Value?, CheckedContinuation<Value?, Never>?) in
            defer { s = .closed }
            switch s {
            case .delivered(let value): return (value, nil)
            case .waiting(let c): return (nil, c)
            case .queued, .closed: return (nil, nil)
            }
        }
        waiter?.resume(returning: nil)
        return value
    }
}
