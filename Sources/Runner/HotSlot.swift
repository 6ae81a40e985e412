import Logging
import RunnerOS
import Synchronization

/// The hand-over point between a hot container's own lifecycle task and the calls it serves.
///
/// Its one `SlotLifecycle` value decides every change; this class owns it under one lock and
/// carries out what it returns. The container offers the slot while idle; a call that took its
/// token claims it (`claim`, thawing it when told to), begins (`beginCall`), runs, and ends it
/// (`endCall`). A good call's end wakes nobody: it opens a new idle period (`idleness`), which
/// the container's task reads when one of its timers fires, and only a task that waits for the
/// end of a call in progress is woken by it. Failures and retirement reach that task through
/// `nextEvent` at once. The container's state
/// in its queue's counts, and whether the evictor may take it, change under the same lock at
/// the moment they become true: a waiting call deciding whether to launch, or an evictor looking
/// for room, never sees a container as idle after a call took it, or busy after it became free.
/// A freeze runs outside the lock on a blocking thread; the container counts as paused from
/// its start, and a call that claims the container meanwhile waits for the freeze to end.
public final class HotSlot: Sendable {
    public let hot: any HotContainerHandle
    /// The container's name (for call records and logs).
    public let name: String
    let queue: SlotQueue<HotSlot>
    let evictor: Evictor
    /// The memory and CPU the container holds, released once it has ended: what an eviction of
    /// it frees.
    let resources: ResourceToken
    let metrics: AgentMetrics?
    /// Where an eviction is told, with the container's keys (app_id, fn_id, image, container).
    let logger: Logger?
    let logMetadata: Logger.Metadata
    /// Started ahead of demand (a fn's prewarm annotation), not for a waiting call.
    let prewarmed: Bool
    /// The agent's clock, which idle periods begin on.
    let clock: any AgentClock

    /// What the container's task hears: a call failed or the container is to end, or, when its
    /// wait asks for it (`callEndAfter`), a good call's end.
    typealias Event = SlotLifecycle.Notice

    /// The container's current idle period, as its task reads it when a timer wakes it.
    struct Idleness: Sendable {
        /// Good call ends so far: a different count than at the last reading means calls came
        /// and went meanwhile, and the idle and freeze timers start again from `since`.
        var period: UInt64
        /// When the last good call ended, or the container was first offered (agent clock).
        var since: UInt64
        /// A call has claimed the container or runs on it now.
        var hasCall: Bool
    }

    private struct State {
        var life = SlotLifecycle()
        /// The state last counted in the queue (the lifecycle's, once applied).
        var counted: SlotQueueStats.ContainerState = .start
        /// Failures not heard yet (a good call's end is never kept: `idlePeriods` counts it).
        var events: [Event] = []
        var waiter: CheckedContinuation<Event?, Never>?
        /// The waiter also wants the end of a good call (one it saw in progress).
        var waiterHearsCallEnds = false
        var idlePeriods: UInt64 = 0
        var idleSince: UInt64 = 0
        /// Which wait `waiter` is: a timer of an earlier wait must not end a later one.
        var waitID: UInt64 = 0
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
        var freezeEnd: AsyncEvent?
    }
    private let state = Mutex(State())

    /// A slot for a container that has just started (counted as starting in `queue`).
    init(
        hot: any HotContainerHandle, name: String, queue: SlotQueue<HotSlot>, evictor: Evictor, resources: ResourceToken,
        clock: any AgentClock, metrics: AgentMetrics? = nil, prewarmed: Bool = false, logger: Logger? = nil,
        logMetadata: Logger.Metadata = [:]
    ) {
        self.clock = clock
        self.logger = logger
        self.logMetadata = logMetadata
        self.metrics = metrics
        self.prewarmed = prewarmed
        self.hot = hot
        self.name = name
        self.queue = queue
        self.evictor = evictor
        self.resources = resources
    }

    /// Whether calls ran here before the current one, and the counters after the last of them.
    var history: (reused: Bool, counters: ContainerCounters?) { state.withLock { ($0.calls > 1, $0.counters) } }

    func recordCounters(_ c: ContainerCounters?) { state.withLock { $0.counters = c } }


    /// Offers the slot for the first time: its first idle period begins.
    func offer() { change(.started) { [clock] in $0.idleSince = clock.nowNanos } }

    var idleness: Idleness {
        state.withLock { Idleness(period: $0.idlePeriods, since: $0.idleSince, hasCall: $0.life.hasCall) }
    }

    /// A call that claimed the container begins: it is busy now, and no longer evictable.
    func beginCall(id: String? = nil, trace: CallTrace? = nil) {
        change(.callBegan) { s in
            s.calls += 1
            if let id { s.lastCallID = id }
            s.lastTrace = trace
        }
    }

    /// What `fnrunner ps` shows of this container.
    func info(function: String) -> ContainerInfo {
        let s = self.state.withLock { $0 }
        let counters = hot.stats()
        let now = MonotonicClock.nowNanos()
        var info = ContainerInfo(
            name: name, fnID: function, state: "\(s.counted)", calls: s.calls,
            frozenForMillis: s.frozenSince.map { (now &- $0) / 1_000_000 },
            memoryBytes: counters?.memoryPeakBytes ?? counters?.memoryCurrentBytes, memoryLimitBytes: resources.memoryBytes)
        info.stateForMillis = (now &- s.stateSince) / 1_000_000
        info.memoryCurrentBytes = counters?.memoryCurrentBytes
        info.memoryPeakBytes = counters?.memoryPeakBytes
        info.cpuMillis = counters.map { $0.cpuUsageNanos / 1_000_000 }
        info.lastCallID = s.lastCallID
        return info
    }

    /// Whether a call is running here now.
    var isBusy: Bool { state.withLock { $0.life.phase == .busy } }

    /// Whether the container is ending (idle timeout, eviction, exit, a failed call).
    var isEnding: Bool { state.withLock { $0.life.phase == .done } }

    /// Ends a call. After a good one the slot is offered again at once, so a caller right behind
    /// finds it idle instead of launching another container. After a failed one the container
    /// is done.
    func endCall(ok: Bool) { change(.callEnded(ok: ok)) }

    /// The container ends now (idle timeout, eviction, shutdown, failed freeze) if no call has
    /// taken it: claims its own token first, so no call can start on it. False if a call won,
    /// or, with `period`, if calls came and went since the container's task read that period
    /// (its timers were due for an earlier one).
    func endIfIdle(period: UInt64? = nil) -> Bool {
        let token = state.withLock { s in period == nil || s.idlePeriods == period ? s.token : nil }
        guard let token, queue.acquire(token) else { return false }
        retire()
        return true
    }

    /// The container took its own token (the caller acquired it): it ends.
    func retire() { change(.retired) }

    /// The container's process ended: an idle container is dropped at once; one a call has
    /// ends with that call.
    func containerExited() {
        if change(.exited).contains(.withdraw) {
            logger?.warning("an idle container's process ended; it is dropped", metadata: logMetadata)
        }
    }

    /// The container's task is leaving: whatever the state, it counts as done.
    func markDone() { change(.left) }

    /// Feeds `event` to the lifecycle and does what it says under the lock (queue counts,
    /// offering, eviction) and then outside it (waking the container's task). Returns the
    /// actions left to the caller: freeze, thaw, waiting for a freeze.
    @discardableResult
    private func change(_ event: SlotLifecycle.Event, _ bookkeeping: (inout State) -> Void = { _ in }) -> [SlotLifecycle.Action] {
        change(from: { _ in event }, bookkeeping)
    }

    /// `change` with the event made under the same lock, from the state it applies to.
    /// `bookkeeping` runs when the event changed something, or always when `always`.
    @discardableResult
    private func change(
        from makeEvent: (State) -> SlotLifecycle.Event, always: Bool = false, _ bookkeeping: (inout State) -> Void = { _ in }
    ) -> [SlotLifecycle.Action] {
        var wake: (CheckedContinuation<Event?, Never>, Event)?
        var resume: AsyncEvent?
        let actions = state.withLock { s -> [SlotLifecycle.Action] in
            let event = makeEvent(s)
            let before = s.life.phase
            let actions = s.life.handle(event)
            if always || s.life.phase != before || !actions.isEmpty { bookkeeping(&s) }
            count(&s)
            for action in actions {
                switch action {
                case .offer: offerToken(&s)
                case .stopBeingEvictable: stopBeingEvictable(&s)
                case .withdraw: if let token = s.token { _ = queue.acquire(token) }
                case .tell(.finished(ok: true)):
                    s.idlePeriods &+= 1
                    s.idleSince = clock.nowNanos
                    if s.waiterHearsCallEnds, let w = s.waiter {
                        s.waiter = nil
                        wake = (w, .finished(ok: true))
                    }
                case .tell(let notice):
                    if let w = s.waiter {
                        s.waiter = nil
                        wake = (w, notice)
                    } else {
                        s.events.append(notice)
                    }
                case .freeze: s.freezeEnd = AsyncEvent()
                case .resumeClaimant:
                    resume = s.freezeEnd
                    s.freezeEnd = nil
                case .awaitFreeze, .thaw: break
                }
            }
            if case .freezeEnded = event { s.freezeEnd = nil }
            return actions
        }
        resume?.fire()
        if let (w, notice) = wake { w.resume(returning: notice) }
        return actions
    }

    private func offerToken(_ s: inout State) {
        s.token = queue.queue(self)
        if s.evictionID == nil {
            s.evictionID = evictor.register(
                slotKey: queue.key, memoryBytes: resources.memoryBytes, cpuMillicores: resources.cpuMillicores,
                first: prewarmed && s.calls == 0,
                resources: resources
            ) { [weak self] in
                // Gone already: its room is back, or about to be.
                guard let self else { return true }
                if self.endIfIdle() {
                    self.logger?.info("evicted an idle container for another function", metadata: self.logMetadata)
                    return true
                }
                // A call took it (its room is not coming), unless it is ending on its own.
                return self.isEnding
            }
        }
    }

    private func stopBeingEvictable(_ s: inout State) {
        if let id = s.evictionID { evictor.unregister(id) }
        s.evictionID = nil
    }

    /// Moves the container in its queue's counts to the lifecycle's state, if it changed.
    private func count(_ s: inout State) {
        let new = s.life.containerState
        guard s.counted != new, s.counted != .done else { return }
        let now = MonotonicClock.nowNanos()
        s.frozenSince = new == .paused ? now : nil
        s.stateSince = now
        queue.move(container: s.counted, to: new)
        s.counted = new
    }

    /// Freezes the container if it is idle and no call has taken it since the container's task
    /// read idle period `period`; false if it did not begin (a call has it or came and went, or
    /// it is already frozen or done). A failed freeze is thrown: the container must then end,
    /// unless a call claimed it meanwhile.
    ///
    /// No lock is held meanwhile: the freeze and the memory reclaim after it (milliseconds, on
    /// a v1 freezer more) run on a blocking thread, not on the cooperative pool.
    func freezeIfIdle(period: UInt64) async throws(RunnerError) -> Bool {
        // Whether the queue already handed the token to a waiting call (or a call already came
        // and went), read under the lock the decision is made in.
        guard change(from: { .freezeDue(tokenTaken: $0.token?.isTaken == true || $0.idlePeriods != period) }).contains(.freeze)
        else { return false }
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
        var trace: CallTrace?
        // Also when the container was retired meanwhile: the freeze still belongs to the last call.
        change(from: { _ in .freezeEnded(ok: result.failure == nil) }, always: true) { s in
            // Once: a later freeze without a call in between belongs to no call.
            if result.failure == nil { trace = s.lastTrace }
            s.lastTrace = nil
        }
        try result.get()
        metrics?.observeFreeze(seconds: Double(t1 - t0) / 1e9)
        // The freeze that followed the last call is part of that call's trace (ending after it).
        trace?.phase("freeze", from: t0, to: t1, attributes: ["fn.container": .string(name)])
        return true
    }

    /// What a call that claimed the container does next.
    enum Claim: Sendable, Equatable {
        /// Begin the call.
        case ready
        /// Thaw it first, and say how that went (`thawEnded`).
        case thaw
        /// It ended (its freeze failed while the call waited, or its process ended): wait for
        /// another container.
        case lost
    }

    /// A call took this slot's token and claims the container: from now on no freeze begins,
    /// the evictor leaves it alone, and a freeze in progress is waited for.
    func claim() async -> Claim {
        var freezeEnd: AsyncEvent?
        let actions = change(.claimed) { s in freezeEnd = s.freezeEnd }
        if actions.contains(.awaitFreeze) { await freezeEnd?.waitIgnoringCancellation() }
        return state.withLock { s in
            switch s.life.phase {
            case .claimed(frozen: true): .thaw
            case .claimed(frozen: false): .ready
            default: .lost
            }
        }
    }

    /// The claiming call's thaw ended; a failed one ends the container (a runner fault, never
    /// the function's), and the call waits for another. Whether the call may begin: false also
    /// when the container's process ended meanwhile.
    @discardableResult
    func thawEnded(ok: Bool) -> Bool {
        change(.thawEnded(ok: ok))
        return state.withLock { $0.life.phase == .claimed(frozen: false) }
    }

    /// The next failure (or retirement), or nil at `deadline` on the agent clock (never with no
    /// deadline). With `callEndAfter`, the idle period the task last read, the end of a good
    /// call is an event too, also one that came after that reading. The deadline is a timer of
    /// the clock, not a task raced against the wait. A cancelled task gets nil at once, unless
    /// `cancellable` is false: then it waits for the event all the same (the end of a call that
    /// still has the container).
    ///
    /// Only the slot's own task may wait here. The cancellation handler takes the slot's lock,
    /// and under that lock an offer resumes the calls waiting in the queue (`offerToken`); a
    /// call's task waiting here could be cancelled while such an offer resumes it, and the two
    /// would wait for each other for good (as `SlotQueue.take` once did).
    func nextEvent(until deadline: UInt64?, callEndAfter: UInt64? = nil, cancellable: Bool = true) async
        -> Event?
    {
        var timer: AgentTimer?
        let event = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Event?, Never>) in
                // Only this slot's own task waits here, so an event that came meanwhile is still there.
                let wait = state.withLock { s -> UInt64? in
                    if !s.events.isEmpty { return nil }
                    if let callEndAfter, s.idlePeriods != callEndAfter { return nil }
                    s.waitID &+= 1
                    s.waiter = c
                    s.waiterHearsCallEnds = callEndAfter != nil
                    return s.waitID
                }
                guard let wait else {
                    return c.resume(returning: state.withLock { $0.events.isEmpty ? .finished(ok: true) : $0.events.removeFirst() })
                }
                if let deadline { timer = clock.schedule(atNanos: deadline) { self.endWait(wait) } }
                if cancellable && Task.isCancelled { endWait(nil) }
            }
        } onCancel: {
            if cancellable { endWait(nil) }
        }
        timer?.cancel()
        return event
    }

    /// Ends the wait with nil: the wait `id` (its deadline came), or any (its task was cancelled).
    private func endWait(_ id: UInt64?) {
        let w = state.withLock { s -> CheckedContinuation<Event?, Never>? in
            guard id == nil || id == s.waitID else { return nil }
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume(returning: nil)
    }

}
