import Synchronization

/// Frees memory and CPU for a waiting call by ending idle hot containers of other functions:
/// Fn's later evictor. Only when the whole shortfall can be covered is anything evicted, oldest
/// first (but instances prewarmed and never used before all others); the caller then waits for
/// the evicted containers to be gone before trying again.
public final class Evictor: Sendable {
    /// One idle container's offer to be evicted. `evict` is how the evictor tells it to end.
    public struct Registration: Sendable {
        public let id: UInt64
        public let slotKey: String
        public let memoryBytes: UInt64
        public let cpuMillicores: UInt64
        /// Started ahead of demand and never used: evicted before the others.
        public let first: Bool
        let evict: @Sendable () -> Void
    }

    private struct State {
        var entries: [Registration] = []  // registration order: oldest first
        var nextID: UInt64 = 1
    }
    private let state = Mutex(State())

    public init() {}

    /// An idle container registers; nil for one that holds nothing (it could never help).
    public func register(
        slotKey: String, memoryBytes: UInt64, cpuMillicores: UInt64, first: Bool = false, evict: @escaping @Sendable () -> Void
    ) -> UInt64? {
        if memoryBytes == 0 && cpuMillicores == 0 { return nil }
        return state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.entries.append(
                Registration(id: id, slotKey: slotKey, memoryBytes: memoryBytes, cpuMillicores: cpuMillicores, first: first, evict: evict))
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

    /// Evicts the oldest idle containers of other slot keys that together cover both needs, or
    /// nothing if they cannot. Returns the ids evicted (their `evict` closures have been called).
    public func evict(for slotKey: String, neededMemoryBytes: UInt64, neededCPUMillicores: UInt64) -> [UInt64] {
        if neededMemoryBytes == 0 && neededCPUMillicores == 0 { return [] }
        let chosen = state.withLock { s -> [Registration] in
            var memory: UInt64 = 0
            var cpu: UInt64 = 0
            var picked: [Registration] = []
            for e in s.entries.filter(\.first) + s.entries.filter({ !$0.first }) where e.slotKey != slotKey {
                if memory >= neededMemoryBytes && cpu >= neededCPUMillicores { break }
                picked.append(e)
                memory += e.memoryBytes
                cpu += e.cpuMillicores
            }
            guard memory >= neededMemoryBytes && cpu >= neededCPUMillicores else { return [] }
            let ids = Set(picked.map(\.id))
            s.entries.removeAll { ids.contains($0.id) }
            return picked
        }
        for e in chosen { e.evict() }
        return chosen.map(\.id)
    }

    public var count: Int { state.withLock { $0.entries.count } }
}
