import GRDB
import Runner
import RunnerOS

/// Apps, fns and triggers: stored whole as JSON, with the columns that are looked up or must be
/// unique beside them.
extension Store {
    public func insertApp(_ app: App) async throws(RunnerError) {
        let body = try encoded(app)
        try await write("create app") { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM app WHERE name = ?", arguments: [app.name]) == true {
                throw RunnerError(.conflict, "App already exists", step: "create app")
            }
            try db.execute(sql: "INSERT INTO app(id, name, body) VALUES (?, ?, ?)", arguments: [app.id, app.name, body])
        }
    }

    public func updateApp(_ app: App) async throws(RunnerError) {
        invalidateApp(app.id)
        defer { invalidateApp(app.id) }
        let body = try encoded(app)
        try await write("update app") { db in
            try db.execute(sql: "UPDATE app SET name = ?, body = ? WHERE id = ?", arguments: [app.name, body, app.id])
            if db.changesCount == 0 { throw RunnerError(.notFound, "App not found", step: "update app") }
        }
    }

    public func app(id: String) async throws(RunnerError) -> App {
        try await appCache.value(id) { () async throws(RunnerError) -> App in
            guard let a = try await fetchOne(App.self, "SELECT body FROM app WHERE id = ?", [id]) else {
                throw RunnerError(.notFound, "App not found", step: "get app")
            }
            return a
        }
    }

    /// An app's cached entries and every cached route (a route holds its app).
    private func invalidateApp(_ id: String) {
        appCache.invalidate(id)
        routeCache.invalidateAll()
    }

    public func app(named name: String) async throws(RunnerError) -> App {
        guard let a = try await fetchOne(App.self, "SELECT body FROM app WHERE name = ?", [name]) else {
            throw RunnerError(.notFound, "App not found", step: "get app")
        }
        return a
    }

    /// Deletes an app with its fns and triggers in one transaction, as Fn does. A call already
    /// running keeps its definition and finishes.
    public func deleteApp(id: String) async throws(RunnerError) {
        defer {
            invalidateApp(id)
            fnCache.invalidate { $0.appID == id }
        }
        try await write("delete app") { db in
            try db.execute(sql: "DELETE FROM trigger WHERE appID = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM fn WHERE appID = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM app WHERE id = ?", arguments: [id])
            if db.changesCount == 0 { throw RunnerError(.notFound, "App not found", step: "delete app") }
        }
    }

    public func apps(name: String?, cursor: String?, perPage: Int) async throws(RunnerError) -> Page<App> {
        var sql = "SELECT id, name, body FROM app WHERE " + Self.afterCursor
        var args = Self.cursorArguments(cursor)
        if let name {
            sql += " AND name = ?"
            args.append(name)
        }
        return try await pageByName(App.self, sql, args, perPage: perPage)
    }

    // MARK: fns

    public func insertFn(_ fn: Fn) async throws(RunnerError) {
        let body = try encoded(fn)
        try await write("create fn") { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM app WHERE id = ?", arguments: [fn.appID]) != true {
                throw RunnerError(.notFound, "App not found", step: "create fn")
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM fn WHERE appID = ? AND name = ?", arguments: [fn.appID, fn.name]) == true {
                throw RunnerError(.conflict, "Fn with specified name already exists", step: "create fn")
            }
            try db.execute(sql: "INSERT INTO fn(id, appID, name, body) VALUES (?, ?, ?, ?)", arguments: [fn.id, fn.appID, fn.name, body])
        }
    }

    public func updateFn(_ fn: Fn) async throws(RunnerError) {
        fnCache.invalidate(fn.id)
        defer { fnCache.invalidate(fn.id) }
        let body = try encoded(fn)
        try await write("update fn") { db in
            try db.execute(sql: "UPDATE fn SET name = ?, body = ? WHERE id = ?", arguments: [fn.name, body, fn.id])
            if db.changesCount == 0 { throw RunnerError(.notFound, "Fn not found", step: "update fn") }
        }
    }

    public func fn(id: String) async throws(RunnerError) -> Fn {
        try await fnCache.value(id) { () async throws(RunnerError) -> Fn in
            guard let f = try await fetchOne(Fn.self, "SELECT body FROM fn WHERE id = ?", [id]) else {
                throw RunnerError(.notFound, "Fn not found", step: "get fn")
            }
            return f
        }
    }

    /// Deletes a fn and its triggers.
    public func deleteFn(id: String) async throws(RunnerError) {
        defer {
            fnCache.invalidate(id)
            routeCache.invalidateAll()
        }
        try await write("delete fn") { db in
            try db.execute(sql: "DELETE FROM trigger WHERE fnID = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM fn WHERE id = ?", arguments: [id])
            if db.changesCount == 0 { throw RunnerError(.notFound, "Fn not found", step: "delete fn") }
        }
    }

    public func fns(appID: String?, name: String?, cursor: String?, perPage: Int) async throws(RunnerError) -> Page<Fn> {
        var sql = "SELECT id, name, body FROM fn WHERE " + Self.afterCursor
        var args = Self.cursorArguments(cursor)
        if let appID {
            sql += " AND appID = ?"
            args.append(appID)
        }
        if let name {
            sql += " AND name = ?"
            args.append(name)
        }
        return try await pageByName(Fn.self, sql, args, perPage: perPage)
    }

    // MARK: triggers

    public func insertTrigger(_ t: Trigger) async throws(RunnerError) {
        let body = try encoded(t)
        try await write("create trigger") { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM app WHERE id = ?", arguments: [t.appID]) != true {
                throw RunnerError(.notFound, "App not found", step: "create trigger")
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM fn WHERE id = ? AND appID = ?", arguments: [t.fnID, t.appID]) != true {
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM fn WHERE id = ?", arguments: [t.fnID]) == true {
                    throw RunnerError(.invalidArgument, "Invalid Fn ID - not owned by specified app", step: "create trigger")
                }
                throw RunnerError(.notFound, "Fn not found", step: "create trigger")
            }
            if try Bool.fetchOne(
                db, sql: "SELECT 1 FROM trigger WHERE appID = ? AND type = ? AND source = ?", arguments: [t.appID, t.type, t.source]) == true
            {
                throw RunnerError(.conflict, "Trigger with the same type and source exists on this app", step: "create trigger")
            }
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM trigger WHERE appID = ? AND name = ?", arguments: [t.appID, t.name]) == true {
                throw RunnerError(.conflict, "Trigger already exists", step: "create trigger")
            }
            try db.execute(
                sql: "INSERT INTO trigger(id, appID, fnID, name, type, source, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [t.id, t.appID, t.fnID, t.name, t.type, t.source, body])
        }
    }

    public func updateTrigger(_ t: Trigger) async throws(RunnerError) {
        routeCache.invalidateAll()
        defer { routeCache.invalidateAll() }
        let body = try encoded(t)
        try await write("update trigger") { db in
            try db.execute(
                sql: "UPDATE trigger SET name = ?, source = ?, body = ? WHERE id = ?", arguments: [t.name, t.source, body, t.id])
            if db.changesCount == 0 { throw RunnerError(.notFound, "Trigger not found", step: "update trigger") }
        }
    }

    public func trigger(id: String) async throws(RunnerError) -> Trigger {
        guard let t = try await fetchOne(Trigger.self, "SELECT body FROM trigger WHERE id = ?", [id]) else {
            throw RunnerError(.notFound, "Trigger not found", step: "get trigger")
        }
        return t
    }

    public func trigger(appID: String, type: String, source: String) async throws(RunnerError) -> Trigger {
        guard let t = try await fetchOne(
            Trigger.self, "SELECT body FROM trigger WHERE appID = ? AND type = ? AND source = ?", [appID, type, source])
        else {
            throw RunnerError(.notFound, "Trigger not found", step: "find trigger")
        }
        return t
    }

    /// The app and trigger an HTTP trigger request goes to (`/t/{app_name}{source}`), cached:
    /// the one lookup of a trigger call before its fn's (also cached).
    public func route(appName: String, type: String, source: String) async throws(RunnerError) -> TriggerRoute {
        try await routeCache.value("\(appName)\u{0}\(type)\u{0}\(source)") { () async throws(RunnerError) -> TriggerRoute in
            let app = try await app(named: appName)
            return TriggerRoute(app: app, trigger: try await trigger(appID: app.id, type: type, source: source))
        }
    }

    public func deleteTrigger(id: String) async throws(RunnerError) {
        routeCache.invalidateAll()
        defer { routeCache.invalidateAll() }
        try await write("delete trigger") { db in
            try db.execute(sql: "DELETE FROM trigger WHERE id = ?", arguments: [id])
            if db.changesCount == 0 { throw RunnerError(.notFound, "Trigger not found", step: "delete trigger") }
        }
    }

    public func triggers(appID: String, fnID: String?, name: String?, cursor: String?, perPage: Int) async throws(RunnerError) -> Page<Trigger> {
        var sql = "SELECT id, name, body FROM trigger WHERE " + Self.afterCursor + " AND appID = ?"
        var args = Self.cursorArguments(cursor) + [appID]
        if let fnID {
            sql += " AND fnID = ?"
            args.append(fnID)
        }
        if let name {
            sql += " AND name = ?"
            args.append(name)
        }
        return try await pageByName(Trigger.self, sql, args, perPage: perPage)
    }

    // MARK: helpers

    func encoded(_ value: some Encodable) throws(RunnerError) -> String {
        do {
            return try Self.encode(value)
        } catch {
            throw RunnerError(.invalidArgument, "cannot encode: \(error)", step: "store")
        }
    }

    func fetchOne<T: Decodable & Sendable>(_ type: T.Type, _ sql: String, _ args: [any DatabaseValueConvertible & Sendable]) async throws(RunnerError) -> T? {
        let arguments = StatementArguments(args.map { Optional($0 as any DatabaseValueConvertible) })
        return try await read("read") { db in
            guard let text = try String.fetchOne(db, sql: sql, arguments: arguments) else { return nil }
            return try Self.decode(T.self, text)
        }
    }

    /// Lists of apps, fns and triggers go by name, as Fn's; the cursor is the last item's name
    /// and id (names of triggers are unique only per app here, but the id makes any order total).
    static let afterCursor = "(name > ? OR (name = ? AND id > ?))"

    static func cursorArguments(_ cursor: String?) -> [any DatabaseValueConvertible & Sendable] {
        let parts = (cursor ?? "").split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts[0]
        let id = parts.count > 1 ? parts[1] : ""
        return cursor == nil ? ["", "", ""] : [name, name, id]
    }

    /// One page of `sql`'s rows (id, name, body) in name order; the next cursor is "name\0id".
    func pageByName<T: Decodable & Sendable>(
        _ type: T.Type, _ sql: String, _ args: [any DatabaseValueConvertible & Sendable], perPage: Int
    ) async throws(RunnerError) -> Page<T> {
        let arguments = StatementArguments(args.map { Optional($0 as any DatabaseValueConvertible) } + [Optional(perPage + 1 as any DatabaseValueConvertible)])
        let rows = try await read("list") { db in
            try Row.fetchAll(db, sql: sql + " ORDER BY name, id LIMIT ?", arguments: arguments).map { row -> (String, T) in
                (row["name"] as String + "\u{0}" + (row["id"] as String), try Self.decode(T.self, row["body"]))
            }
        }
        let items = rows.prefix(perPage)
        return Page(items: items.map { $0.1 }, nextCursor: rows.count > perPage ? items.last?.0 : nil)
    }

    /// One page of `sql`'s rows (id, body) in id order (`descending`: newest first), reading
    /// one more than asked to learn whether a next page exists.
    func page<T: Decodable & Sendable>(
        _ type: T.Type, _ sql: String, _ args: [any DatabaseValueConvertible & Sendable], perPage: Int, descending: Bool = false
    ) async throws(RunnerError) -> Page<T> {
        let arguments = StatementArguments(args.map { Optional($0 as any DatabaseValueConvertible) } + [Optional(perPage + 1 as any DatabaseValueConvertible)])
        let query = sql + (descending ? " ORDER BY id DESC LIMIT ?" : " ORDER BY id LIMIT ?")
        let rows = try await read("list") { db in
            try Row.fetchAll(db, sql: query, arguments: arguments).map { row -> (String, T) in
                (row["id"], try Self.decode(T.self, row["body"]))
            }
        }
        let items = rows.prefix(perPage)
        return Page(items: items.map { $0.1 }, nextCursor: rows.count > perPage ? items.last?.0 : nil)
    }
}
