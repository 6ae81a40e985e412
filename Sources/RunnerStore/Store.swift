import Foundation
import GRDB
import Runner
import RunnerOS
import Synchronization

/// The embedded store: apps, fns, triggers, call records and logs in one SQLite database (WAL,
/// migrated on open). Survives restarts; a store that cannot be opened, is not a database, or
/// cannot be written is a startup error that names the file.
public final class Store: Sendable {
    let pool: DatabasePool
    public let path: String
    /// Fns and apps by id, and trigger routes by app name, type and source, as last read:
    /// every invoke looks them up, and this process is the store's only writer.
    let fnCache = ReadCache<Fn>()
    let appCache = ReadCache<App>()
    let routeCache = ReadCache<TriggerRoute>()

    /// Moves on with every change to a fn or an app: anything made from fns and apps read
    /// before it may be stale, anything made from those read after it is current. Lets a cache
    /// of what is derived from them check one number instead of comparing the values.
    public var fnsAndAppsGeneration: UInt64 { fnCache.generation &+ appCache.generation }

    public init(path: String) throws(RunnerError) {
        self.path = path
        try Self.checkExistingFile(path)
        do {
            var config = Configuration()
            config.busyMode = .timeout(5)
            config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            pool = try DatabasePool(path: path, configuration: config)
            try Self.migrator.migrate(pool)
            // A read-only file or directory shows only on the first write: find out now.
            try pool.write { db in try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES ('opened', ?)", arguments: [Date().description]) }
        } catch let error as DatabaseError {
            throw RunnerError(.unavailable, "cannot use the store \(path): \(error.message ?? error.description)", step: "open store")
        } catch {
            throw RunnerError(.unavailable, "cannot use the store \(path): \(error)", step: "open store")
        }
    }

    /// Refuses a file that is there but cannot be this store, before SQLite would quietly make a
    /// new database of an empty file or serve a truncated one from its write-ahead log: the
    /// operator must see it, by name, not lose the store.
    static func checkExistingFile(_ path: String) throws(RunnerError) {
        func refuse(_ why: String) -> RunnerError {
            RunnerError(.unavailable, "the store \(path) \(why); move it away to start a new store", step: "open store")
        }
        guard let header = try? FileSystem.readPrefix(path, bytes: 100) else { return }  // no file yet: a new store
        if header.isEmpty { throw refuse("is an empty file, not a database") }
        guard header.count == 100, header.starts(with: Array("SQLite format 3\0".utf8)) else {
            throw refuse("is not an SQLite database")
        }
        func be(_ range: Range<Int>) -> UInt64 { header[range].reduce(0) { $0 << 8 | UInt64($1) } }
        let pageSize = be(16..<18) == 1 ? 65_536 : be(16..<18)
        let pages = be(28..<32)
        // The page count in the header is valid when its "valid-for" counter matches the change
        // counter (every SQLite since 3.7.0 keeps them so).
        guard pages > 0, be(92..<96) == be(24..<28), let size = FileSystem.size(path) else { return }
        if pageSize * pages > size {
            throw refuse("is truncated: its header says \(pageSize * pages) bytes, the file has \(size)")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.create(table: "meta") { t in
                t.primaryKey("key", .text)
                t.column("value", .text)
            }
            try db.create(table: "app") { t in
                t.primaryKey("id", .text)
                t.column("name", .text).notNull().unique()
                t.column("body", .jsonText).notNull()
            }
            try db.create(table: "fn") { t in
                t.primaryKey("id", .text)
                t.column("appID", .text).notNull().indexed().references("app", onDelete: .restrict)
                t.column("name", .text).notNull()
                t.column("body", .jsonText).notNull()
                t.uniqueKey(["appID", "name"])
            }
            try db.create(table: "trigger") { t in
                t.primaryKey("id", .text)
                t.column("appID", .text).notNull().indexed().references("app", onDelete: .restrict)
                t.column("fnID", .text).notNull().indexed().references("fn", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("type", .text).notNull()
                t.column("source", .text).notNull()
                t.column("body", .jsonText).notNull()
                t.uniqueKey(["appID", "type", "source"])
                t.uniqueKey(["appID", "name"])
            }
            try db.create(table: "call") { t in
                t.primaryKey("id", .text)
                t.column("fnID", .text).notNull()
                t.column("createdAt", .text).notNull()
                t.column("body", .jsonText).notNull()
            }
            try db.create(index: "call_by_fn", on: "call", columns: ["fnID", "id"])
            try db.create(table: "log") { t in
                t.primaryKey("callID", .text)
                t.column("log", .blob).notNull()
            }
        }
        m.registerMigration("v2 queue") { db in
            // Detached calls until they end; the call's record sits in `call` from the start.
            try db.create(table: "queue") { t in
                t.primaryKey("id", .text)
                t.column("claimed", .boolean).notNull().defaults(to: false)
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("function", .jsonText).notNull()
                t.column("request", .jsonText).notNull()
                t.column("body", .blob).notNull()
            }
        }
        return m
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// Makes this process the store's only server (the call queue's claims and the caches rely
    /// on it): a second `fnrunner serve` on the same data directory is refused by name.
    public func lockForServing() throws(RunnerError) -> FileLock {
        do {
            return try FileLock(path: path + ".lock")
        } catch {
            throw RunnerError(
                .unavailable, "the store \(path) is in use by another fnrunner serve (\(error.message))", step: "lock store",
                errno: error.errno)
        }
    }

    /// Runs `body` in a write transaction; SQLite errors become RunnerErrors (unique → conflict).
    func write<T: Sendable>(_ step: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(RunnerError) -> T {
        do {
            return try await pool.write(body)
        } catch {
            throw Self.writeFailure(error, step: step)
        }
    }

    /// `write` on the calling thread, which waits meanwhile (for the writer's turn, and for the
    /// commit): GRDB runs the transaction there instead of on its own queue. Only for a thread
    /// made for blocking, such as a `BackgroundExecutor`'s, never one of the cooperative pool.
    func writeBlocking<T>(_ step: String, _ body: (Database) throws -> T) throws(RunnerError) -> T {
        do {
            return try pool.write(body)
        } catch {
            throw Self.writeFailure(error, step: step)
        }
    }

    private static func writeFailure(_ error: any Error, step: String) -> RunnerError {
        if let e = error as? RunnerError { return e }
        if let e = error as? DatabaseError, e.resultCode == .SQLITE_CONSTRAINT {
            return RunnerError(.conflict, "already exists: \(e.message ?? "constraint")", step: step)
        }
        return failure(error, step: step)
    }

    /// A store failure is the node's fault, never the function's: a full disk or a locked
    /// database may pass (503), anything else (a damaged database) is an internal error (500).
    static func failure(_ error: any Error, step: String) -> RunnerError {
        if let e = error as? DatabaseError, [.SQLITE_FULL, .SQLITE_BUSY, .SQLITE_LOCKED].contains(e.resultCode) {
            return RunnerError(.storeUnavailable, "the store cannot take writes now: \(e.message ?? e.description)", step: step)
        }
        return RunnerError(.storeFailed, "the store failed: \(error)", step: step)
    }

    func read<T: Sendable>(_ step: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(RunnerError) -> T {
        do {
            return try await pool.read(body)
        } catch let e as RunnerError {
            throw e
        } catch {
            throw Self.failure(error, step: step)
        }
    }
}

extension RunnerError.Code {
    /// A name or key that must be unique is taken (409).
    public static let conflict = RunnerError.Code("conflict")
    /// The store cannot be read or written: damaged, or an I/O error (500).
    public static let storeFailed = RunnerError.Code("store_failed")
    /// The store is full or busy for now (503, with Retry-After).
    public static let storeUnavailable = RunnerError.Code("store_unavailable")
}
