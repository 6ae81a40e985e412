import Synchronization

/// Frees memory and CPU for a waiting call by ending idle hot containers of other functions:
/// Fn's later evictor. Only when the whole shortfall can be covered is anything evicted, oldest
/// first (but instances prewarmed and never used before all others); the caller then waits for
/// the evicted containers to be gone. Until they are, their room counts as on its way (see
/// `ResourceTracker.expectRelease`), so a second launch evicts only for what is still missing.
public final class Evictor: Sendable {
    /// One idle container's offer to be evicted. `evict` is how the evictor tells it to end.
    public struct Registration: Sendable {
        public let id: UInt64
        public let slotKey: String
        public let memoryBytes: UInt64
        public let cpuMillicores: UInt64
        /// Started ahead of demand and never used: evicted before the others.
        public let first: Bool
        /// What the container holds; its room is on its way from the eviction until it is released.
        let resources: ResourceToken?
        /// Tells the container to end. Whether its room is on its way: false if a call took it
        /// first (true also when it was ending anyway).
        let evict: @Sendable () -> Bool
    }

    private struct State {
        var entries: [Registration] = []  // registration order: oldest first
        var nextID: UInt64 = 1
    }
    private let state = Mutex(State())

    public init() {}

    /// An idle container registers; nil for one that holds nothing (it could never help).
    /// `resources`: the token it holds, whose release is how its room comes back.
    public func register(
        slotKey: String, memoryBytes: UInt64, cpuMillicores: UInt64, first: Bool = false, resources: ResourceToken? = nil,
        evict: @escaping @Sendable () -> Bool
    ) -> UInt64? {
        if memoryBytes == 0 && cpuMillicores == 0 { return nil }
        return state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.entries.append(
                Registration(
                    id: id, slotKey: slotKey, memoryBytes: memoryBytes, cpuMillicores: cpuMillicores, first: first, resources: resources,
                    evict: evict))
            return id
        }
    }

    /// The container became busy (or is ending on its own): it is no longer evictable.
    @discardableResult
    public func unregister(_ id: UInt64) -> Bool {
        state.withLock { s in
            guard let i = s.entries.firstIndex(where: { $0.id == id }) else { return false }
            s.entries.remove(at: i)
            return true
        }
    }

    /// What an eviction for a waiting launch did.
    public struct Outcome: Sendable, Equatable {
        /// The ids evicted (containers a call took first are not among them).
        public var evicted: [UInt64]
        /// Whether a shortfall is covered: by these evictions and room already on its way.
        /// False: nothing was evicted, since the idle containers could cover none of them.
        public var covered: Bool
    }

    /// Evicts the oldest idle containers of other slot keys that together cover the first of
    /// `shortfalls` they can (see `ResourceTracker.shortfalls`), or nothing if they cover none.
    /// The shortfalls are read under this evictor's lock, and what is picked is marked in
    /// `tracker` as room on its way before the lock is let go: of two launches evicting at
    /// once, the second sees the first's evictions and ends containers only for what they do
    /// not free.
    public func evict(
        for slotKey: String, tracker: ResourceTracker?, shortfalls: () -> [ResourceTracker.Shortfall]
    ) -> Outcome {
        let (chosen, covered) = state.withLock { s -> ([Registration], Bool) in
            let candidates = s.entries.filter(\.first) + s.entries.filter({ !$0.first })
            for need in shortfalls() {
                if need.isZero { return ([], true) }
                var memory: UInt64 = 0
                var cpu: UInt64 = 0
                var picked: [Registration] = []
                for e in candidates where e.slotKey != slotKey {
                    if memory >= need.memoryBytes && cpu >= need.cpuMillicores { break }
                    picked.append(e)
                    memory += e.memoryBytes
                    cpu += e.cpuMillicores
                }
                guard memory >= need.memoryBytes && cpu >= need.cpuMillicores else { continue }
                let ids = Set(picked.map(\.id))
                s.entries.removeAll { ids.contains($0.id) }
                if let tracker {
                    for e in picked { if let token = e.resources { tracker.expectRelease(token) } }
                }
                return (picked, true)
            }
            return ([], false)
        }
        var evicted: [UInt64] = []
        for e in chosen {
            if e.evict() {
                evicted.append(e.id)
            } else if let tracker, let token = e.resources {
                tracker.cancelExpectedRelease(token)
            }
        }
        return Outcome(evicted: evicted, covered: covered)
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
