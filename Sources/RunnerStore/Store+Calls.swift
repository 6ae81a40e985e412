import Foundation
import GRDB
import Logging
import Synchronization
import Runner
import RunnerOS

/// Call records and their logs.
extension Store {
    /// Inserts or replaces a call's record (and its log, when given; see `insertEnded`).
    public func saveCall(_ record: CallRecord, log: [UInt8]? = nil) async throws(RunnerError) {
        try await saveCalls([(record, log)])
    }

    /// Inserts or replaces several calls in one transaction; `started` are detached calls
    /// that began running (their records are updated while they are still queued).
    public func saveCalls(_ calls: [(CallRecord, [UInt8]?)], started: [CallRecord] = []) async throws(RunnerError) {
        let rows = CallRows(calls, started: started)
        try await write("save calls") { db in try self.insert(db, rows) }
    }

    /// `saveCalls` on the calling thread, which waits for the transaction: only for a thread
    /// made for blocking (see `writeBlocking`).
    public func saveCallsBlocking(_ calls: [(CallRecord, [UInt8]?)], started: [CallRecord] = []) throws(RunnerError) {
        let rows = CallRows(calls, started: started)
        try writeBlocking("save calls") { db in try self.insert(db, rows) }
    }

    /// Records encoded for their rows, before the transaction, which then only writes.
    struct CallRows: Sendable {
        var ended: [(CallRecord, String, [UInt8]?)] = []
        var started: [(CallRecord, String)] = []

        init(_ calls: [(CallRecord, [UInt8]?)], started: [CallRecord]) {
            for (record, log) in calls { ended.append((record, CallRecordJSON.encode(record), log)) }
            for record in started { self.started.append((record, CallRecordJSON.encode(record))) }
        }
    }

    private func insert(_ db: Database, _ rows: CallRows) throws {
        for (record, body) in rows.started { try markRunning(db, record, body: body) }
        for (record, body, log) in rows.ended { try Self.insertEnded(db, record, body: body, log: log) }
    }

    /// Writes an ended call's record row and its log row; an empty log gets no row (an ended
    /// call without one has an empty log), which saves most calls a second row.
    static func insertEnded(_ db: Database, _ record: CallRecord, body: String, log: [UInt8]?) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO call(id, fnID, createdAt, body) VALUES (?, ?, ?, ?)")
            .execute(arguments: [record.id, record.fnID, record.createdAt, body])
        if let log, !log.isEmpty {
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO log(callID, log) VALUES (?, ?)").execute(arguments: [record.id, Data(log)])
        }
    }

    public func call(fnID: String, id: String) async throws(RunnerError) -> CallRecord {
        guard let r = try await fetchOne(CallRecord.self, "SELECT body FROM call WHERE id = ? AND fnID = ?", [id, fnID]) else {
            throw RunnerError(.notFound, "Call not found", step: "get call")
        }
        return r
    }

    public func callLog(fnID: String, id: String) async throws(RunnerError) -> [UInt8] {
        let record = try await call(fnID: fnID, id: id)
        let data = try await read("get log") { db in
            try Data.fetchOne(db, sql: "SELECT log FROM log WHERE callID = ?", arguments: [id])
        }
        if let data { return Array(data) }
        // An empty log is not written; a call that has not ended has no log yet.
        guard record.status != .queued && record.status != .running else { throw RunnerError(.notFound, "Log not found", step: "get log") }
        return []
    }

    /// A fn's calls, newest first; `cursor` is the id of the last call of the previous page.
    /// `from`/`to` bound created_at (RFC 3339 text compares in time order).
    public func calls(fnID: String, from: String?, to: String?, cursor: String?, perPage: Int) async throws(RunnerError) -> Page<CallRecord> {
        var sql = "SELECT id, body FROM call WHERE fnID = ?"
        var args: [any DatabaseValueConvertible & Sendable] = [fnID]
        if let cursor {
            sql += " AND id < ?"
            args.append(cursor)
        }
        if let from {
            sql += " AND createdAt >= ?"
            args.append(from)
        }
        if let to {
            sql += " AND createdAt < ?"
            args.append(to)
        }
        return try await page(CallRecord.self, sql, args, perPage: perPage, descending: true)
    }

    /// Deletes calls (and logs) older than `before` (RFC 3339), then all but the newest
    /// `keep` of each fn; never a detached call still queued or running. Returns how many
    /// were deleted.
    @discardableResult
    public func pruneCalls(before: String?, keepPerFn keep: Int?) async throws(RunnerError) -> Int {
        try await write("prune calls") { db in
            var deleted = 0
            if let before {
                let doomed = "SELECT id FROM call WHERE createdAt < ? AND id NOT IN (SELECT id FROM queue)"
                try db.execute(sql: "DELETE FROM log WHERE callID IN (\(doomed))", arguments: [before])
                try db.execute(sql: "DELETE FROM call WHERE id IN (\(doomed))", arguments: [before])
                deleted += db.changesCount
            }
            if let keep {
                // Per fn, the id of its keep-th newest call is the cutoff (a walk of `keep` steps
                // down the (fnID, id) index); older calls go. Counting the newer calls of every
                // call instead is quadratic: minutes for a fn with 50,000 calls.
                let doomed =
                    keep <= 0
                    ? "SELECT id FROM call WHERE id NOT IN (SELECT id FROM queue)"
                    : """
                    SELECT c.id FROM call c
                      JOIN (SELECT f.fnID AS fnID,
                                   (SELECT n.id FROM call n WHERE n.fnID = f.fnID ORDER BY n.id DESC LIMIT 1 OFFSET ?) AS cutoff
                              FROM (SELECT DISTINCT fnID FROM call) f) k ON c.fnID = k.fnID
                     WHERE k.cutoff IS NOT NULL AND c.id < k.cutoff AND c.id NOT IN (SELECT id FROM queue)
                    """
                let arguments: StatementArguments = keep <= 0 ? [] : [keep - 1]
                try db.execute(sql: "DELETE FROM log WHERE callID IN (\(doomed))", arguments: arguments)
                try db.execute(sql: "DELETE FROM call WHERE id IN (\(doomed))", arguments: arguments)
                deleted += db.changesCount
            }
            return deleted
        }
    }
}

/// Writes every call's record and log to the store, off the call's path: ended calls are
/// queued and written in batches (`flush`, run by the server's writer a few milliseconds after
/// the first of a batch is queued, and by readers of the calls API before they read). A failed
/// write is logged, not turned into the call's error: the function ran, and its caller gets its
/// answer.
public final class StoreRecorder: CallListener {
    let store: Store
    let logger: Logger
    private struct Pending {
        /// Ended calls not written yet; their records and logs are made at the write, not on
        /// the call's path.
        var ended: [Call] = []
        var started: [Call] = []
        /// Fired (and replaced) when a record is held while none was: the writer waits on it.
        var arrived = AsyncEvent()
        var isEmpty: Bool { ended.isEmpty && started.isEmpty }
    }
    private let pending = Mutex(Pending())
    /// Whether a flush runs, and the flushes waiting for their turn.
    private let turns = Mutex<(busy: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    /// Where batches are encoded and written: a thread below the event loop's priority.
    let executor: BackgroundExecutor
    /// A batch larger than this is encoded and written at the process's priority (the writer's
    /// task, GRDB's queue): the low-priority thread fell behind (the CPUs are that busy), and
    /// records must not pile up in memory without bound.
    let backgroundBatchLimit: Int

    public init(store: Store, logger: Logger, executor: BackgroundExecutor = .records, backgroundBatchLimit: Int = 4096) {
        self.store = store
        self.logger = logger
        self.executor = executor
        self.backgroundBatchLimit = backgroundBatchLimit
    }

    /// A detached call's record says running once written; a sync call's is written when it ends.
    public func beforeCall(_ call: Call) async throws(RunnerError) {
        if call.type == Call.detached { hold { $0.started.append(call) } }
    }

    /// Sync calls only: a detached call's end is written by the queue with its removal.
    public func afterCall(_ call: Call) async throws(RunnerError) {
        if call.type != Call.detached { hold { $0.ended.append(call) } }
    }

    /// Holds a record for the next write; the first one after a write wakes the writer.
    private func hold(_ add: (inout Pending) -> Void) {
        let arrived = pending.withLock { p -> AsyncEvent? in
            let wasEmpty = p.isEmpty
            add(&p)
            guard wasEmpty else { return nil }
            defer { p.arrived = AsyncEvent() }
            return p.arrived
        }
        arrived?.fire()
    }

    /// Returns once a record waits to be written (at once if one does), or when the task is
    /// cancelled. The writer waits here between batches, so an idle server does not wake up to
    /// find nothing.
    public func waitForRecords() async {
        guard let arrived = pending.withLock({ $0.isEmpty ? $0.arrived : nil }) else { return }
        _ = await arrived.wait()
    }

    /// Writes what is queued; returns how many calls were written. Flushes run one at a time:
    /// a reader's flush returns only once a batch another flush took is committed too.
    ///
    /// The batch is taken, encoded, written and let go on `executor`'s thread, so none of that
    /// work (about a fifth of serve's CPU under load) competes with the event loop as equals.
    /// A batch over `backgroundBatchLimit` is all done at the caller's priority instead.
    @discardableResult
    public func flush() async -> Int {
        await flushTurn()
        defer { endFlushTurn() }
        if pending.withLock({ $0.ended.count + $0.started.count }) > backgroundBatchLimit {
            return await writePending(blocking: false)
        }
        return await withTaskExecutorPreference(executor) { await writePending(blocking: true) }
    }

    /// Takes what is queued and writes it, blocking the thread (only a `BackgroundExecutor`'s)
    /// or through GRDB's queue; the calls are let go where this runs.
    private func writePending(blocking: Bool) async -> Int {
        let (ended, started) = pending.withLock { p -> ([Call], [Call]) in
            defer { (p.ended, p.started) = ([], []) }
            return (p.ended, p.started)
        }
        let count = ended.count + started.count
        if count == 0 { return 0 }
        let calls = ended.map { ($0.record, $0.log.bytes) }
        let running = started.map(\.record)
        do throws(RunnerError) {
            if blocking {
                try store.saveCallsBlocking(calls, started: running)
            } else {
                try await store.saveCalls(calls, started: running)
            }
        } catch {
            // A cancelled server (the tests') does not wait for its last writes.
            if !Task.isCancelled {
                logger.error("cannot record calls", metadata: ["count": "\(count)", "error": "\(error)"])
            }
        }
        return count
    }

    private func flushTurn() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = turns.withLock { t -> Bool in
                if t.busy {
                    t.waiting.append(c)
                    return false
                }
                t.busy = true
                return true
            }
            if now { c.resume() }
        }
    }

    private func endFlushTurn() {
        let next = turns.withLock { t -> CheckedContinuation<Void, Never>? in
            if t.waiting.isEmpty {
                t.busy = false
                return nil
            }
            return t.waiting.removeFirst()  // the turn passes on; busy stays set
        }
        next?.resume()
    }
}
