import Synchronization

/// Something that happens once (shutdown began, the last running call ended); any number of
/// tasks can wait for it, and a cancelled wait returns nil instead of hanging.
final class AsyncEvent: Sendable {
    private struct State {
        var fired = false
        var waiters: [UInt64: CheckedContinuation<Void?, Never>] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    var hasFired: Bool { state.withLock { $0.fired } }

    func fire() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void?, Never>] in
            if s.fired { return [] }
            s.fired = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume(returning: ()) }
    }

    /// Returns `()` once fired, nil if the task was cancelled first.
    func wait() async -> Void? {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void?, Never>) in
                let fired = state.withLock { s -> Bool in
                    if s.fired { return true }
                    s.waiters[id] = c
                    return false
                }
                if fired { c.resume(returning: ()) }
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
final class AsyncValue<T: Sendable>: Sendable {
    private let value = Mutex<T?>(nil)
    private let arrived = AsyncEvent()

    func set(_ v: T) {
        value.withLock { if $0 == nil { $0 = v } }
        arrived.fire()
    }

    func wait() async -> T? {
        guard await arrived.wait() != nil else { return nil }
        return value.withLock { $0 }
    }
}
