@testable import Runner
import RunnerOS
import Synchronization

/// The call queue in memory, for the consumer's rules; it remembers what happened to each call.
final class MemoryCallQueue: CallQueue {
    struct State {
        var waiting: [QueuedCall] = []
        var claimed: [String: QueuedCall] = [:]
        var claims: [String] = []
        var releases: [String] = []
        var completed: [String: (record: CallRecord, log: String)] = [:]
    }
    let state = Mutex(State())

    func enqueue(_ call: Call) async throws(RunnerError) {
        state.withLock { $0.waiting.append(QueuedCall(call)) }
    }

    func claim() async throws(RunnerError) -> QueuedCall? {
        state.withLock { s in
            guard !s.waiting.isEmpty else { return nil }
            var q = s.waiting.removeFirst()
            q.attempts += 1
            s.claimed[q.id] = q
            s.claims.append(q.id)
            return q
        }
    }

    func release(_ id: String) async throws(RunnerError) {
        state.withLock { s in
            guard let q = s.claimed.removeValue(forKey: id) else { return }
            s.waiting.insert(q, at: 0)
            s.releases.append(id)
        }
    }

    func complete(_ call: Call) async throws(RunnerError) {
        let record = call.record
        let log = call.log.text
        state.withLock { s in
            s.claimed[call.id] = nil
            s.completed[call.id] = (record, log)
        }
    }

    func recoverClaims() async throws(RunnerError) -> Int {
        state.withLock { s in
            let n = s.claimed.count
            s.waiting.insert(contentsOf: s.claimed.values.sorted { $0.id < $1.id }, at: 0)
            s.claimed = [:]
            return n
        }
    }

    var claims: [String] { state.withLock { $0.claims } }
    var releases: [String] { state.withLock { $0.releases } }
    var claimedNow: Int { state.withLock { $0.claimed.count } }
    var waitingNow: Int { state.withLock { $0.waiting.count } }
    func completed(_ id: String) -> (record: CallRecord, log: String)? { state.withLock { $0.completed[id] } }
    var completedCount: Int { state.withLock { $0.completed.count } }
}
