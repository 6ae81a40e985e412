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
    private let entries = Mutex<[String: Value]>([:])
    /// Moved on under the entries' lock, so a read that takes both under it sees them agree;
    /// readable without the lock.
    private let generationCounter = Atomic<UInt64>(0)

    init() {}

    /// The cached value, or what `read` returns (kept unless a write happened meanwhile).
    func value(_ key: String, read: () async throws(RunnerError) -> Value) async throws(RunnerError) -> Value {
        let (cached, generation) = entries.withLock { e in (e[key], generationCounter.load(ordering: .relaxed)) }
        if let cached { return cached }
        let value = try await read()
        entries.withLock { e in if generationCounter.load(ordering: .relaxed) == generation { e[key] = value } }
        return value
    }

    func invalidate(_ key: String) { invalidating { $0[key] = nil } }

    func invalidate(where drop: (Value) -> Bool) { invalidating { $0 = $0.filter { !drop($0.value) } } }

    func invalidateAll() { invalidating { $0 = [:] } }

    private func invalidating(_ change: (inout [String: Value]) -> Void) {
        entries.withLock { e in
            generationCounter.add(1, ordering: .releasing)
            change(&e)
        }
    }

    var count: Int { entries.withLock { $0.count } }

    /// Moves on with every invalidation: what was made from values read before it may be stale.
    var generation: UInt64 { generationCounter.load(ordering: .acquiring) }
}
