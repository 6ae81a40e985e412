import RunnerOS
import Synchronization

/// Values read from the store, kept until a write could change them: every invoke looks up its
/// fn and app (a trigger also its route), and this process is the store's only writer, so a
/// call costs no database read once they are cached.
///
/// A read that started before a write and ends after it must not put its older value back:
/// every invalidation moves a generation on, and `store` keeps a value only when none happened
/// since the read began. Only values that were found are kept, so the cache holds at most what
/// the store holds.
final class ReadCache<Value: Sendable>: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var entries: [String: Value] = [:]
    }

    private let state = Mutex(State())
    /// The generation, readable without the lock (moved on under it).
    private let published = Atomic<UInt64>(0)

    init() {}

    /// The cached value, or what `read` returns (kept unless a write happened meanwhile).
    func value(_ key: String, read: () async throws(RunnerError) -> Value) async throws(RunnerError) -> Value {
        let (cached, generation) = state.withLock { s in (s.entries[key], s.generation) }
        if let cached { return cached }
        let value = try await read()
        state.withLock { s in if s.generation == generation { s.entries[key] = value } }
        return value
    }

    func invalidate(_ key: String) {
        state.withLock { s in
            s.generation &+= 1
            published.store(s.generation, ordering: .releasing)
            s.entries[key] = nil
        }
    }

    func invalidate(where drop: (Value) -> Bool) {
        state.withLock { s in
            s.generation &+= 1
            published.store(s.generation, ordering: .releasing)
            s.entries = s.entries.filter { !drop($0.value) }
        }
    }

    func invalidateAll() {
        state.withLock { s in
            s.generation &+= 1
            published.store(s.generation, ordering: .releasing)
            s.entries = [:]
        }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Moves on with every invalidation: what was made from values read before it may be stale.
    var generation: UInt64 { published.load(ordering: .acquiring) }
}
