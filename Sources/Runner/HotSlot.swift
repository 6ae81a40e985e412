import RunnerOS
import Synchronization

/// The hand-over point between a hot container's own lifecycle task and the calls it serves.
///
/// The container offers the slot while idle; a call that took its token starts (`beginCall`),
/// runs, and ends it (`endCall`), and the container task learns both through `nextEvent`.
/// Freezing happens under the same lock as `beginCall`, so a container is never frozen under a
/// call that has already started.
public final class HotSlot: Sendable {
    public let hot: HotContainer

    enum Event: Sendable, Equatable {
        case taken
        case finished(ok: Bool)
    }

    private struct State {
        var busy = false
        var events: [Event] = []
        var waiter: CheckedContinuation<Event?, Never>?
        /// The token this slot is currently offered under.
        var token: SlotToken<HotSlot>?
    }
    private let state = Mutex(State())

    init(hot: HotContainer) { self.hot = hot }

    /// A call took this slot's token: mark it busy (thawing is the call's first step).
    func beginCall() {
        post(.taken) { $0.busy = true }
    }

    /// Ends a call. After a good one the slot is offered again at once, under the same lock that
    /// a next call's `beginCall` takes, so a caller right behind finds it idle instead of
    /// launching another container, and its `.taken` always follows this `.finished`.
    func endCall(ok: Bool, queue: SlotQueue<HotSlot>? = nil) {
        post(.finished(ok: ok)) { s in
            s.busy = false
            if ok, let queue { s.token = queue.queue(self) }
        }
    }

    /// Offers the slot (the container's first idle period).
    func offer(to queue: SlotQueue<HotSlot>) {
        state.withLock { $0.token = queue.queue(self) }
    }

    /// The token the slot is offered under now.
    var token: SlotToken<HotSlot>? { state.withLock { $0.token } }

    private func post(_ event: Event, _ change: (inout State) -> Void) {
        let waiter = state.withLock { s -> CheckedContinuation<Event?, Never>? in
            change(&s)
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.events.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// Freezes the container if no call is running on it; false if one is (or the freeze failed,
    /// in which case the error is thrown and the container must end).
    func freezeIfIdle() throws(RunnerError) -> Bool {
        let result: Result<Bool, RunnerError> = state.withLock { s in
            if s.busy { return .success(false) }
            do throws(RunnerError) {
                try hot.freeze()
                return .success(true)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The next event, or nil after `timeout`.
    func nextEvent(timeout: Duration?) async -> Event? {
        if let ready = state.withLock({ s -> Event? in s.events.isEmpty ? nil : s.events.removeFirst() }) { return ready }
        guard let timeout else { return await waitEvent() }
        return await raceWithTimeout(timeout, { await self.waitEvent() }, discard: { self.putBack($0) })
    }

    private func waitEvent() async -> Event? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Event?, Never>) in
                let ready = state.withLock { s -> Event?? in
                    if !s.events.isEmpty { return .some(s.events.removeFirst()) }
                    s.waiter = c
                    return .none
                }
                if case .some(let e) = ready { c.resume(returning: e) }
                if Task.isCancelled { cancelWait() }
            }
        } onCancel: {
            cancelWait()
        }
    }

    private func cancelWait() {
        let w = state.withLock { s -> CheckedContinuation<Event?, Never>? in
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume(returning: nil)
    }

    private func putBack(_ e: Event) { state.withLock { $0.events.insert(e, at: 0) } }
}
