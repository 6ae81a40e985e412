import Logging
import RunnerOS
import Synchronization

/// The hand-over point between a hot container's own lifecycle task and the calls it serves.
///
/// The container offers the slot while idle; a call that took its token starts (`beginCall`),
/// runs, and ends it (`endCall`), and the container task learns both through `nextEvent`.
/// Every change of the container's state (idle, paused, busy, done), its queue's counts, and
/// whether the evictor may take it happens here, under one lock, at the moment it is true: a
/// waiting call deciding whether to launch, or an evictor looking for room, never sees a
/// container as idle after a call took it, or as busy after it became free. A freeze runs
/// outside the lock, on a thread of its own; the container counts as paused from its start, and
/// a call that took the container meanwhile waits for the freeze to end (`claimForCall`) before
/// it thaws it, and no freeze begins once a call has claimed it, so a container is never frozen
/// under a running call.
public final class HotSlot: Sendable {
    public let hot: any HotContainerHandle
    /// The container's name (for call records and logs).
    public let name: String
    let queue: SlotQueue<HotSlot>
    let evictor: Evictor
    let memoryBytes: UInt64
    let cpuMillicores: UInt64
    let metrics: AgentMetrics?
    /// Where an eviction is told, with the container's keys (app_id, fn_id, image, container).
    let logger: Logger?
    let logMetadata: Logger.Metadata
    /// Started ahead of demand (a fn's prewarm annotation), not for a waiting call.
    let prewarmed: Bool

    enum Event: Sendable, Equatable {
        case taken
        case finished(ok: Bool)
    }

    private struct State {
        var container: SlotQueueStats.ContainerState = .start
        var events: [Event] = []
        var waiter: CheckedContinuation<Event?, Never>?
        /// The token this slot is currently offered under.
        var token: SlotToken<HotSlot>?
        var evictionID: UInt64?
        /// Calls begun on this container so far, and the last one's id.
        var calls = 0
        var lastCallID: String?
        /// The last call's trace, which this container's next freeze becomes a span of.
        var lastTrace: CallTrace?
        /// When the container entered its current state (monotonic nanoseconds).
        var stateSince = MonotonicClock.nowNanos()
        /// Counters after the previous call: the next call's stats are the difference.
        var counters: ContainerCounters?
        /// When it was frozen (monotonic nanoseconds), while it is.
        var frozenSince: UInt64?
        /// Fired when the freeze in progress ends (nil when none is).
        var freezing: AsyncEvent?
        /// A call took the token and is about to begin: no freeze may start now.
        var claimedByCall = false
    }
    private let state = Mutex(State())

    /// A slot for a container that has just started (counted as starting in `queue`).
    init(
        hot: any HotContainerHandle, name: String, queue: SlotQueue<HotSlot>, evictor: Evictor, memoryBytes: UInt64, cpuMillicores: UInt64,
        metrics: AgentMetrics? = nil, prewarmed: Bool = false, logger: Logger? = nil, logMetadata: Logger.Metadata = [:]
    ) {
        self.logger = logger
        self.logMetadata = logMetadata
        self.metrics = metrics
        self.prewarmed = prewarmed
        self.hot = hot
        self.name = name
        self.queue = queue
        self.evictor = evictor
        self.memoryBytes = memoryBytes
        self.cpuMillicores = cpuMillicores
    }

    /// Whether calls ran here before the current one, and the counters after the last of them.
    var history: (reused: Bool, counters: ContainerCounters?) { state.withLock { ($0.calls > 1, $0.counters) } }

    func recordCounters(_ c: ContainerCounters?) { state.withLock { $0.counters = c } }


    /// Offers the slot for the first time.
    func offer() { state.withLock { becomeIdle(&$0) } }

    /// A call took this slot's token: it is busy now, and no longer evictable.
    func beginCall(id: String? = nil, trace: CallTrace? = nil) {
        post(.taken) { s in
            s.calls += 1
            if let id { s.lastCallID = id }
            s.lastTrace = trace
            stopBeingEvictable(&s)
            move(&s, to: .busy)
        }
    }

    /// What `fnrunner ps` shows of this container.
    func info(function: String) -> ContainerInfo {
        let s = self.state.withLock { $0 }
        let counters = hot.stats()
        let now = MonotonicClock.nowNanos()
        var info = ContainerInfo(
            name: name, fnID: function, state: "\(s.container)", calls: s.calls,
            frozenForMillis: s.frozenSince.map { (now &- $0) / 1_000_000 },
            memoryBytes: counters?.memoryPeakBytes ?? counters?.memoryCurrentBytes, memoryLimitBytes: memoryBytes)
        info.stateForMillis = (now &- s.stateSince) / 1_000_000
        info.memoryCurrentBytes = counters?.memoryCurrentBytes
        info.memoryPeakBytes = counters?.memoryPeakBytes
        info.cpuMillis = counters.map { $0.cpuUsageNanos / 1_000_000 }
        info.lastCallID = s.lastCallID
        return info
    }

    /// Whether it is frozen now (a call that took it thaws it first).
    var isFrozen: Bool { state.withLock { $0.container == .paused } }

    /// Whether a call is running here now.
    var isBusy: Bool { state.withLock { $0.container == .busy } }

    /// Ends a call. After a good one the slot is offered again at once, so a caller right behind
    /// finds it idle instead of launching another container, and its `.taken` always follows
    /// this `.finished`. After a failed one the container is done.
    func endCall(ok: Bool) {
        post(.finished(ok: ok)) { s in
            if ok { becomeIdle(&s) } else { end(&s) }
        }
    }

    /// The container ends now (idle timeout, eviction, shutdown, failed freeze) if no call has
    /// taken it: claims its own token first, so no call can start on it. False if a call won.
    func endIfIdle() -> Bool {
        guard let token = state.withLock({ $0.token }), queue.acquire(token) else { return false }
        endCall(ok: false)
        return true
    }

    /// The container's task is leaving: whatever the state, it counts as done.
    func markDone() { state.withLock { end(&$0) } }

    private func becomeIdle(_ s: inout State) {
        s.claimedByCall = false
        move(&s, to: .idle)
        s.token = queue.queue(self)
        if s.evictionID == nil {
            s.evictionID = evictor.register(
                slotKey: queue.key, memoryBytes: memoryBytes, cpuMillicores: cpuMillicores, first: prewarmed && s.calls == 0
            ) { [weak self] in
                guard let self else { return }
                if self.endIfIdle() { self.logger?.info("evicted an idle container for another function", metadata: self.logMetadata) }
            }
        }
    }

    private func end(_ s: inout State) {
        stopBeingEvictable(&s)
        move(&s, to: .done)
    }

    private func stopBeingEvictable(_ s: inout State) {
        if let id = s.evictionID { evictor.unregister(id) }
        s.evictionID = nil
    }

    private func move(_ s: inout State, to new: SlotQueueStats.ContainerState) {
        guard s.container != new, s.container != .done else { return }
        let now = MonotonicClock.nowNanos()
        s.frozenSince = new == .paused ? now : nil
        s.stateSince = now
        queue.move(container: s.container, to: new)
        s.container = new
    }

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

    /// Freezes the container if it is idle; false if a call has it (or it is already frozen or
    /// done). A failed freeze is thrown: the container must then end.
    ///
    /// No lock is held meanwhile, and the freeze with the memory reclaim after it (milliseconds,
    /// on a v1 freezer more) runs on a blocking thread, not on the cooperative pool. The slot
    /// stays offered: a call that takes it meanwhile waits in `freezeEnded` and then thaws it,
    /// as it would have waited for the lock.
    func freezeIfIdle() async throws(RunnerError) -> Bool {
        let ended = AsyncEvent()
        let began = state.withLock { s -> Bool in
            // A token already taken went to a call that waited for this container (Fn's channel
            // handoff): it gets the container as it is, not frozen and thawed on the way.
            guard s.container == .idle, !s.claimedByCall, s.token?.isTaken != true else { return false }
            s.freezing = ended
            move(&s, to: .paused)
            return true
        }
        guard began else { return false }
        let hot = self.hot
        let t0 = MonotonicClock.nowNanos()
        let result: Result<Void, RunnerError>
        do throws(RunnerError) {
            try await BlockingThread.run { () throws(RunnerError) in try hot.freeze() }
            result = .success(())
        } catch {
            result = .failure(error)
        }
        let t1 = MonotonicClock.nowNanos()
        let trace = state.withLock { s -> CallTrace? in
            s.freezing = nil
            guard case .success = result else {
                if s.container == .paused { move(&s, to: .idle) }  // not frozen after all
                return nil
            }
            // Once: a later freeze without a call in between belongs to no call.
            defer { s.lastTrace = nil }
            return s.lastTrace
        }
        ended.fire()
        try result.get()
        metrics?.observeFreeze(seconds: Double(t1 - t0) / 1e9)
        // The freeze that followed the last call is part of that call's trace (ending after it).
        trace?.phase("freeze", from: t0, to: t1, attributes: ["fn.container": .string(name)])
        return true
    }

    /// A call took this slot's token: from now on no freeze begins, and one in progress is
    /// waited for, so that the call's thaw comes after it.
    func claimForCall() async {
        let freezing = state.withLock { s -> AsyncEvent? in
            s.claimedByCall = true
            return s.freezing
        }
        await freezing?.waitIgnoringCancellation()
    }

    /// The next event, or nil after `timeout`.
    func nextEvent(timeout: Duration?, clock: any AgentClock) async -> Event? {
        if let ready = state.withLock({ s -> Event? in s.events.isEmpty ? nil : s.events.removeFirst() }) { return ready }
        guard let timeout else { return await waitEvent() }
        return await raceWithTimeout(timeout, clock: clock, { await self.waitEvent() }, discard: { self.putBack($0) })
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
