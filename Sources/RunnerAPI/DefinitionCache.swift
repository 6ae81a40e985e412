import Runner
import RunnerOS
import RunnerStore
import Synchronization

/// The agent's view of each fn (`FnAPI.definition`) and its slot key, made once per version of
/// the fn and its app instead of on every call.
///
/// Making them costs a JSONEncoder run per annotation (a fn set up for freeze experiments
/// carries several) and the slot key's text, on every invoke. An entry is used only while it is
/// current: an invoke by fn id checks the store's generation of fns and apps (one number, no
/// read of the fn or its app at all), any other call compares the fn and app it read with the
/// entry's. Either way an update is seen by the next call.
final class DefinitionCache: Sendable {
    /// What a call of one fn needs, made from one version of the fn and its app.
    final class Definition: Sendable {
        let app: App
        let fn: Fn
        let function: FunctionDefinition
        let slotKey: SlotKey
        /// The store's `fnsAndAppsGeneration` read before the fn and app were; nil when they
        /// came from elsewhere (a trigger's route), which only equality can vouch for.
        let generation: UInt64?

        init(app: App, fn: Fn, generation: UInt64?) {
            self.app = app
            self.fn = fn
            function = FnAPI.definition(app: app, fn: fn)
            slotKey = function.slotKey
            self.generation = generation
        }
    }

    private let entries = Mutex<[String: Definition]>([:])
    /// Entries kept at most; past it the cache starts again empty (a node with more fns than
    /// this in use pays the old per-call cost for some of them, nothing else).
    let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    /// An invoke's fn by id, with its app: no lookup but this one while no fn or app changed
    /// since the entry was made.
    func invoked(_ fnID: String, in store: Store) async throws(RunnerError) -> Definition {
        let generation = store.fnsAndAppsGeneration
        if let entry = entries.withLock({ $0[fnID] }), entry.generation == generation { return entry }
        let fn = try await store.fn(id: fnID)
        let app = try await store.app(id: fn.appID)
        return keep(Definition(app: app, fn: fn, generation: generation))
    }

    /// The entry for `fn` and `app` as the caller read them.
    func definition(app: App, fn: Fn) -> Definition {
        if let entry = entries.withLock({ $0[fn.id] }), entry.fn == fn, entry.app == app { return entry }
        return keep(Definition(app: app, fn: fn, generation: nil))
    }

    private func keep(_ entry: Definition) -> Definition {
        entries.withLock {
            if $0.count >= capacity && $0[entry.fn.id] == nil { $0.removeAll(keepingCapacity: true) }
            $0[entry.fn.id] = entry
        }
        return entry
    }

    var count: Int { entries.withLock { $0.count } }
}
