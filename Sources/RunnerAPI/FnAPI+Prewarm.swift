import Runner
import RunnerOS
import RunnerStore

/// Keeps the agent's prewarm targets (`fnrunner.io/prewarm`, on a fn or its app) and the
/// driver's zygote templates in step with the store: after a fn or app is saved or deleted,
/// and (prewarm targets) once at startup.
extension FnAPI {
    /// The fn's target as saved now (its app gives config and, maybe, the annotation).
    func prewarm(_ fn: Fn) async throws(RunnerError) {
        agent.functionSaved(Self.definition(app: try await store.app(id: fn.appID), fn: fn))
    }

    /// Every fn of `app`, after the app changed (its config and annotations are theirs too).
    func prewarmFns(of app: App) async throws(RunnerError) {
        for fn in try await allFns(appID: app.id) { agent.functionSaved(Self.definition(app: app, fn: fn)) }
    }

    /// Every fn in the store, at startup: instances ahead of demand come back after a restart.
    public func prewarmAll() async throws(RunnerError) {
        var apps: [String: App] = [:]
        for fn in try await allFns(appID: nil) {
            let app: App
            if let known = apps[fn.appID] {
                app = known
            } else {
                app = try await store.app(id: fn.appID)
                apps[fn.appID] = app
            }
            let definition = Self.definition(app: app, fn: fn)
            if definition.prewarmCount > 0 { agent.prewarm(definition) }
        }
    }

    func allFns(appID: String?) async throws(RunnerError) -> [Fn] {
        var out: [Fn] = []
        var cursor: String?
        repeat {
            let page = try await store.fns(appID: appID, name: nil, cursor: cursor, perPage: 100)
            out += page.items
            cursor = page.nextCursor
        } while cursor != nil
        return out
    }
}
