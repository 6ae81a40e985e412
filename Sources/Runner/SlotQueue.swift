import Synchronization

/// The idle hot containers of one slot key, and the calls waiting for one: Fn's slot queue.
///
/// Idle containers offer themselves as tokens; a waiting call takes the **newest** free token
/// (LIFO, so the fewest containers stay warm and the rest can time out), or, if the caller says
/// which containers it would rather have (`preferring`), the newest of those among the
/// `preferenceDepth` newest free tokens. A token can be taken once: a waiting call and the
/// container's own timers (idle timeout, eviction, shutdown) race for it, the first wins, the
/// loser backs off quietly.
public final class SlotQueue<Slot: Sendable>: Sendable {
    public let key: String

    private struct State {
        var tokens: [SlotToken<Slot>] = []
        /// Calls waiting for a token, in arrival order: each is in line from before it suspends
        /// until it leaves itself (a place that refuses tokens is one leaving).
        var waiters: [PlaceInLine<SlotToken<Slot>>] = []
        var nextID: UInt64 = 1
        var stats = SlotQueueStats()
        /// Bumped on every call's state change: the launcher timeout counts from the last one.
        var activity: UInt64 = 0
    }
    private let state = Mutex(State())

    public init(key: String) { self.key = key }

    /// An idle container offers itself. A call already waiting gets it at once.
    @discardableResult
    public func queue(_ slot: Slot) -> SlotToken<Slot> {
        state.withLock { s in
            let token = SlotToken(id: s.nextID, slot: slot)
            s.nextID += 1
            Self.offer(token, in: &s)
            return token
        }
    }

    /// Gives `token` to the first call in line (claimed for it), or puts it with the free ones.
    /// Delivered under the queue's lock: a call out of line has its token or none, never one on
    /// its way. A place that refuses it is a call that stopped waiting and leaves the line next.
    private static func offer(_ token: SlotToken<Slot>, in s: inout State) {
        guard !s.waiters.isEmpty else {
            s.tokens.append(token)
            return
        }
        token.claim()
        while !s.waiters.isEmpty {
            if s.waiters.removeFirst().deliver(token) { return }
        }
        token.release()
        s.tokens.append(token)
    }

    /// Claims `token` (for the container itself or a caller that holds it). False if it was
    /// already taken: by a call, or by an earlier claim.
    public func acquire(_ token: SlotToken<Slot>) -> Bool {
        state.withLock { s in
            guard token.claim() else { return false }
            if let i = s.tokens.lastIndex(where: { $0 === token }) { s.tokens.remove(at: i) }
            return true
        }
    }

    /// Waits for the newest free token and takes it; nil on timeout or cancellation, and nil at
    /// once when the waiting calls still need another container once the caller is in line
    /// (after `inLine`): a container that failed to start before the caller was in line woke the
    /// waiters before this one waited, and the caller must look again instead of sleeping until
    /// its timeout.
    ///
    /// `inLine` runs once the caller is in line and before it waits: a container launched from
    /// there goes to a call in line (the first) even when it offers itself at once, on another
    /// thread, before this task has suspended. (Launched before, it could go to the free tokens
    /// first and, with no freeze delay, begin to freeze.)
    public func take(
        timeout: Duration? = nil, clock: any AgentClock = SystemClock(), inLine: () -> Void = {},
        preferring preferred: ((Slot) -> Bool)? = nil
    ) async -> SlotToken<Slot>? {
        let place: PlaceInLine<SlotToken<Slot>>
        switch enterLine(preferring: preferred) {
        case .token(let token): return token
        case .inLine(let inLine): place = inLine
        }
        inLine()
        if isNewContainerNeeded { return leaveLine(place) }
        // A wait that ends (timeout, cancellation) refuses containers at once, so one offered
        // meanwhile goes to the next call in line, not to this one on its way out; it leaves the
        // line below. The cancellation handler takes no lock of the queue's: an offer resumes a
        // waiting call under it, and that resume needs the lock this cancellation holds (the
        // two once hung a node with 2,000 calls in flight for good).
        let wait: @Sendable () async -> SlotToken<Slot>? = {
            await withTaskCancellationHandler { await place.wait() } onCancel: { place.refuse() }
        }
        let token: SlotToken<Slot>?
        if let timeout {
            token = await raceWithTimeout(timeout, clock: clock, wait)
        } else {
            token = await wait()
        }
        // A token handed over as the wait ended is the caller's all the same.
        return token ?? leaveLine(place)
    }

    private enum Entry {
        case token(SlotToken<Slot>)
        case inLine(PlaceInLine<SlotToken<Slot>>)
    }

    private func enterLine(preferring preferred: ((Slot) -> Bool)?) -> Entry {
        state.withLock { s in
            if let token = Self.claimNewest(&s, preferring: preferred) { return .token(token) }
            let place = PlaceInLine<SlotToken<Slot>>()
            s.waiters.append(place)
            return .inLine(place)
        }
    }

    /// Takes the call out of line; a token handed to it meanwhile, if any.
    private func leaveLine(_ place: PlaceInLine<SlotToken<Slot>>) -> SlotToken<Slot>? {
        dropFromLine(place)
        return place.close()
    }

    /// Offers no more tokens to `place`; one delivered already stays in it.
    private func dropFromLine(_ place: PlaceInLine<SlotToken<Slot>>) {
        state.withLock { s in s.waiters.removeAll { $0 === place } }
    }

    /// Takes the newest free token without waiting (see `take` for `preferring`).
    public func takeNewest(preferring preferred: ((Slot) -> Bool)? = nil) -> SlotToken<Slot>? {
        state.withLock { s in Self.claimNewest(&s, preferring: preferred) }
    }

    /// How many of the newest free tokens a preference looks through: a preferred container
    /// idle for longer than the few newest is likely frozen or about to time out, and worth
    /// less than the newest one.
    public static var preferenceDepth: Int { 4 }

    /// Claims the newest preferred token within `preferenceDepth`, else the newest free one.
    /// `preferred` runs under the queue's lock: it may take no lock that is held while this
    /// queue's is taken.
    private static func claimNewest(_ s: inout State, preferring preferred: ((Slot) -> Bool)?) -> SlotToken<Slot>? {
        if let preferred {
            var looked = 0
            for i in s.tokens.indices.reversed() where !s.tokens[i].isTaken {
                if looked == preferenceDepth { break }
                looked += 1
                if preferred(s.tokens[i].slot) && s.tokens[i].claim() { return s.tokens.remove(at: i) }
            }
        }
        while let token = s.tokens.popLast() {
            if token.claim() { return token }
        }
        return nil
    }

    /// Every waiting call returns nil now (shutdown: they answer 503 instead of waiting on).
    public func wakeWaiters() {
        let waiters = state.withLock { s in
            defer { s.waiters = [] }
            return s.waiters
        }
        for place in waiters { place.close() }
    }

    // MARK: - statistics

    public var stats: SlotQueueStats { state.withLock { $0.stats } }

    /// Moves a call between request states (forward only).
    public func move(request from: SlotQueueStats.RequestState, to: SlotQueueStats.RequestState) {
        state.withLock {
            $0.stats.move(request: from, to: to)
            $0.activity &+= 1
        }
    }

    /// Whether the queue is idle, and a number that changes whenever a call comes or goes.
    public var idleness: (isIdle: Bool, activity: UInt64) { state.withLock { ($0.stats.isIdle, $0.activity) } }

    /// Moves a container between states (forward, or back from busy/paused to idle, busy to paused).
    public func move(container from: SlotQueueStats.ContainerState, to: SlotQueueStats.ContainerState) {
        state.withLock { $0.stats.move(container: from, to: to) }
    }

    /// If the waiting calls need another container, counts one as waiting for resources and
    /// returns true, in one step, so concurrent callers never launch for the same need twice.
    public func claimLaunchIfNeeded() -> Bool {
        state.withLock { s in
            guard s.stats.isNewContainerNeeded else { return false }
            s.stats.move(container: .none, to: .wait)
            return true
        }
    }

    /// The launches needed to keep `n` containers ready or on their way (idle, frozen, starting
    /// or waiting for resources), each counted as waiting for resources, in one step: two
    /// top-ups at once never launch for the same need.
    public func claimLaunches(keeping n: Int) -> Int {
        state.withLock { s in
            let st = s.stats
            let ready = st.count(.idle) + st.count(.paused) + st.count(.start) + st.count(SlotQueueStats.ContainerState.wait)
            let more = max(0, n - ready)
            for _ in 0..<more { s.stats.move(container: .none, to: .wait) }
            return more
        }
    }

    /// The free tokens and the line, for diagnostics: "free=2 line=[waiting, queued]" (a place
    /// leaves the line as a token is delivered to it).
    public var lineDescription: String {
        state.withLock { s in
            "free=\(s.tokens.filter { !$0.isTaken }.count) line=[\(s.waiters.map(\.stateName).joined(separator: ", "))]"
        }
    }

    /// Idle and frozen containers now.
    public var idleCount: Int { state.withLock { $0.stats.count(.idle) + $0.stats.count(.paused) } }

    /// Whether the waiting calls need another container: Fn's rule, on a consistent snapshot.
    public var isNewContainerNeeded: Bool { stats.isNewContainerNeeded }

    /// No calls and no containers in any state: the queue can be dropped.
    public var isIdle: Bool { stats.isIdle }
}

/// One offer of an idle container; taken at most once.
public final class SlotToken<Slot: Sendable>: Sendable {
    public let id: UInt64
    public let slot: Slot
    private let taken = Atomic<Bool>(false)

    init(id: UInt64, slot: Slot) {
        self.id = id
        self.slot = slot
    }

    /// The compare-and-swap of Fn's acquireSlot: true for the first claimant only.
    @discardableResult
    func claim() -> Bool { taken.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged }

    public var isTaken: Bool { taken.load(ordering: .acquiring) }

    /// Unclaimed again: claimed for a place in line that refused it (`SlotQueue.offer`).
    fileprivate func release() { taken.store(false, ordering: .releasing) }
}
