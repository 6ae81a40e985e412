import Synchronization

/// Something that happens once (shutdown began, the last running call ended, a container's
/// process exited); any number of tasks can wait for it, and a cancelled wait returns nil
/// instead of hanging.
public final class AsyncEvent: Sendable {
    private struct State {
        var fired = false
        var waiters: [UInt64: CheckedContinuation<Void?, Never>] = [:]
        var actions: [@Sendable () -> Void] = []
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    public init() {}

    public var hasFired: Bool { state.withLock { $0.fired } }

    public func fire() {
        let (waiters, actions) = state.withLock { s -> ([CheckedContinuation<Void?, Never>], [@Sendable () -> Void]) in
            if s.fired { return ([], []) }
            s.fired = true
            defer {
                s.waiters = [:]
                s.actions = []
            }
            return (Array(s.waiters.values), s.actions)
        }
        for w in waiters { w.resume(returning: ()) }
        for a in actions { a() }
    }

    /// Runs `action` when it fires, on the firing thread (at once, here, if it has already):
    /// for someone who must hear of it without a task waiting for it.
    public func onFire(_ action: @escaping @Sendable () -> Void) {
        let fired = state.withLock { s -> Bool in
            if !s.fired { s.actions.append(action) }
            return s.fired
        }
        if fired { action() }
    }

    /// Returns once fired, whatever happens to the task meanwhile (for waits that must not be
    /// cut short, such as reaping a process).
    public func waitIgnoringCancellation() async {
        let id = nextID()
        await withCheckedContinuation { (c: CheckedContinuation<Void?, Never>) in enroll(id, c) }
    }

    /// Resumes `c` at once if fired, else keeps it under `id` until `fire` or `cancel`.
    private func enroll(_ id: UInt64, _ c: CheckedContinuation<Void?, Never>) {
        let fired = state.withLock { s -> Bool in
            if s.fired { return true }
            s.waiters[id] = c
            return false
        }
        if fired { c.resume(returning: ()) }
    }

    private func nextID() -> UInt64 {
        state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
    }

    /// Returns `()` once fired, nil if the task was cancelled first.
    public func wait() async -> Void? {
        let id = nextID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void?, Never>) in
                enroll(id, c)
                if Task.isCancelled { cancel(id) }
            }
        } onCancel: {
            cancel(id)
        }
    }

    private func cancel(_ id: UInt64) {
        let w = state.withLock { $0.waiters.removeValue(forKey: id) }
        w?.resume(returning: nil)
    }
}

/// A value that arrives once; any number of tasks can wait for it, and a cancelled wait
/// returns nil.
public final class AsyncValue<T: Sendable>: Sendable {
    private let stored = Mutex<T?>(nil)
    private let arrived = AsyncEvent()

    public init() {}

    /// The value, if it has arrived.
    public var value: T? { stored.withLock { $0 } }

    /// Sets the value; only the first one counts.
    public func set(_ v: T) {
        stored.withLock { if $0 == nil { $0 = v } }
        arrived.fire()
    }

    /// Runs `action` with the value when it arrives (at once if it has).
    public func onSet(_ action: @escaping @Sendable (T) -> Void) {
        arrived.onFire { [weak self] in if let v = self?.value { action(v) } }
    }

    /// The value once it arrives; nil if the task was cancelled first.
    public func wait() async -> T? {
        guard await arrived.wait() != nil else { return nil }
        return value
    }

    /// The value once it arrives, whatever happens to the task meanwhile.
    public func waitIgnoringCancellation() async -> T {
        await arrived.waitIgnoringCancellation()
        return value!
    }
}
