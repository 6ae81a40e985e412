import Runner
import RunnerStore
import Synchronization

/// The agent's view of each fn (`FnAPI.definition`) and its slot key, made once per version of
/// the fn and its app instead of on every call.
///
/// Making them costs a JSONEncoder run per annotation (a fn set up for freeze experiments
/// carries several) and the slot key's text, on every invoke. An entry is used only while the
/// fn and app it was made from equal the ones the call read (the store's cache hands back its
/// current values, and an update changes them), so an update is seen by the next call.
final class DefinitionCache: Sendable {
    private struct Entry {
        let app: App
        let fn: Fn
        let definition: FunctionDefinition
        let slotKey: SlotKey
    }
    private let entries = Mutex<[String: Entry]>([:])
    /// Entries kept at most; past it the cache starts again empty (a node with more fns than
    /// this in use pays the old per-call cost for some of them, nothing else).
    let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    func definition(app: App, fn: Fn) -> (FunctionDefinition, SlotKey) {
        if let entry = entries.withLock({ $0[fn.id] }), entry.fn == fn, entry.app == app {
            return (entry.definition, entry.slotKey)
        }
        let definition = FnAPI.definition(app: app, fn: fn)
        let entry = Entry(app: app, fn: fn, definition: definition, slotKey: definition.slotKey)
        entries.withLock {
            if $0.count >= capacity && $0[fn.id] == nil { $0.removeAll(keepingCapacity: true) }
            $0[fn.id] = entry
        }
        return (definition, entry.slotKey)
    }

    var count: Int { entries.withLock { $0.count } }
}
