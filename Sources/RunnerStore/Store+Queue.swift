import Foundation
import GRDB
import Runner
import RunnerOS

/// The durable queue of detached calls. A call's row and its `queued` record are written in
/// one transaction before the client hears 202; the row goes only in the transaction that
/// writes the final record. SQLite in WAL mode has every committed transaction in the OS's
/// page cache, so a runner killed with -9 loses none (a power loss may lose the last ones:
/// `synchronous = NORMAL`).
extension Store: CallQueue {
    struct StoredRequest: Codable {
        var method: String
        var url: String
        var contentType: String?
        var headers: [[String]]
    }

    public func enqueue(_ call: Call) async throws(RunnerError) {
        let q = QueuedCall(call)
        let function = try encoded(q.function)
        let request = try encoded(StoredRequest(method: q.method, url: q.url, contentType: q.contentType, headers: q.headers))
        let record = call.record
        let body = CallRecordJSON.encode(record)
        let payload = Data(q.body)
        try await write("enqueue call") { db in
            try db.execute(
                sql: "INSERT INTO queue(id, function, request, body) VALUES (?, ?, ?, ?)", arguments: [q.id, function, request, payload])
            try db.execute(
                sql: "INSERT INTO call(id, fnID, createdAt, body) VALUES (?, ?, ?, ?)",
                arguments: [record.id, record.fnID, record.createdAt, body])
        }
    }

    public func claim() async throws(RunnerError) -> QueuedCall? {
        try await write("claim call") { db -> QueuedCall? in
            while let r = try Row.fetchOne(db, sql: "SELECT id, attempts, function, request, body FROM queue WHERE claimed = 0 ORDER BY id LIMIT 1") {
                let id: String = r["id"]
                do {
                    let function = try Self.decode(FunctionDefinition.self, r["function"])
                    let request = try Self.decode(StoredRequest.self, r["request"])
                    let body: Data = r["body"]
                    try db.execute(sql: "UPDATE queue SET claimed = 1, attempts = attempts + 1 WHERE id = ?", arguments: [id])
                    return QueuedCall(
                        id: id, function: function, method: request.method, url: request.url, contentType: request.contentType,
                        headers: request.headers, body: Array(body), attempts: (r["attempts"] as Int) + 1)
                } catch {
                    // Written by a version that stored it differently: it can never run here.
                    // It ends as an error instead of blocking the queue (or being lost).
                    try Self.fail(db, id: id, message: "the queued call cannot be read: \(error)")
                }
            }
            return nil
        }
    }

    /// Ends a queued call that cannot run with `message` as its error, and removes it.
    static func fail(_ db: Database, id: String, message: String) throws {
        try db.execute(
            sql: """
                UPDATE call SET body = json_set(body, '$.status', 'error', '$.error', ?, '$.error_code', 'invalid_state',
                  '$.completed_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) WHERE id = ?
                """, arguments: [message, id])
        try db.execute(sql: "DELETE FROM queue WHERE id = ?", arguments: [id])
    }

    public func release(_ id: String) async throws(RunnerError) {
        try await write("release call") { db in
            try db.execute(sql: "UPDATE queue SET claimed = 0 WHERE id = ?", arguments: [id])
            try Self.markQueued(db, "id = ?", [id])
        }
    }

    public func complete(_ call: Call) async throws(RunnerError) {
        let record = call.record
        let body = CallRecordJSON.encode(record)
        let log = call.log.bytes
        try await write("complete call") { db in
            try Self.insertEnded(db, record, body: body, log: log)
            try db.execute(sql: "DELETE FROM queue WHERE id = ?", arguments: [record.id])
        }
    }

    public func recoverClaims() async throws(RunnerError) -> Int {
        try await write("recover claims") { db in
            try db.execute(sql: "UPDATE queue SET claimed = 0 WHERE claimed = 1")
            let n = db.changesCount
            try Self.markQueued(db, "id IN (SELECT id FROM queue)", [])
            return n
        }
    }

    /// How many detached calls are queued or running.
    public func queuedCount() async throws(RunnerError) -> Int {
        try await read("count queue") { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM queue") ?? 0 }
    }

    /// A call that did not start (or whose start a crash undid) reads `queued` again.
    static func markQueued(_ db: Database, _ condition: String, _ arguments: StatementArguments) throws {
        try db.execute(
            sql: """
                UPDATE call SET body = json_remove(json_set(body, '$.status', 'queued'), '$.started_at', '$.completed_at',
                  '$.execution_duration', '$.error', '$.error_code', '$.stats') WHERE \(condition)
                """,
            arguments: arguments)
    }

    /// A detached call started: its record says running, unless it already ended (the
    /// recorder writes this in a later batch than the consumer's `complete` may run).
    func markRunning(_ db: Database, _ record: CallRecord, body: String) throws {
        try db.execute(sql: "UPDATE call SET body = ? WHERE id = ? AND id IN (SELECT id FROM queue)", arguments: [body, record.id])
    }
}
