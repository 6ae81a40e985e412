import Runner
import RunnerOS
import RunnerStore
import Testing

@testable import RunnerAPI

/// Each fn's definition is made once per version of the fn and its app, and an update shows
/// in the next call's definition.
struct DefinitionCacheTests {
    static let app = App(id: "a1", name: "app", config: ["A": "1"], createdAt: "t0", updatedAt: "t0")
    static let fn = Fn(
        id: "f1", appID: "a1", name: "hello", image: "img:1", config: ["B": "2"],
        annotations: [FunctionDefinition.freezeIdleAnnotation: .number(50)], createdAt: "t0", updatedAt: "t0")

    @Test func theSameFnAndAppGiveTheDefinitionAndSlotKeyTheyAlwaysGave() {
        let cache = DefinitionCache()
        let first = cache.definition(app: Self.app, fn: Self.fn)
        let again = cache.definition(app: Self.app, fn: Self.fn)
        #expect(first.function == FnAPI.definition(app: Self.app, fn: Self.fn))
        #expect(again === first)
        #expect(first.slotKey == first.function.slotKey)
        #expect(first.function.freezeIdleMillis == 50)
        #expect(cache.count == 1)
    }

    @Test func anUpdatedFnOrAppIsSeenByTheNextDefinition() {
        let cache = DefinitionCache()
        let before = cache.definition(app: Self.app, fn: Self.fn)
        var fn = Self.fn
        fn.annotations[FunctionDefinition.freezeIdleAnnotation] = .number(75)
        let updated = cache.definition(app: Self.app, fn: fn)
        #expect(updated.function.freezeIdleMillis == 75)
        #expect(updated.slotKey == updated.function.slotKey && updated.slotKey != before.slotKey)
        var app = Self.app
        app.config["A"] = "changed"
        let appUpdated = cache.definition(app: app, fn: fn)
        #expect(appUpdated.function.appConfig["A"] == "changed")
        #expect(appUpdated.slotKey == appUpdated.function.slotKey && appUpdated.slotKey != updated.slotKey)
        // And back: the old versions give the old definition again, not a cached newer one.
        #expect(cache.definition(app: Self.app, fn: Self.fn).function == before.function)
        #expect(cache.count == 1)
    }

    @Test func pastItsCapacityTheCacheStartsAgainAndStillAnswersRightly() {
        let cache = DefinitionCache(capacity: 2)
        var fns: [Fn] = []
        for i in 0..<5 {
            var fn = Self.fn
            fn.id = "f\(i)"
            fn.image = "img:\(i)"
            fns.append(fn)
        }
        for round in 0..<2 {
            for fn in fns {
                let entry = cache.definition(app: Self.app, fn: fn)
                #expect(entry.function == FnAPI.definition(app: Self.app, fn: fn), "round \(round)")
                #expect(entry.slotKey == entry.function.slotKey)
                #expect(cache.count <= 2)
            }
        }
    }

    @Test func anInvokeByIdReadsTheFnOnceAndSeesEveryLaterChangeToTheFnOrItsApp() async throws {
        try await StoreTests().withStore { store, _ in
            let cache = DefinitionCache()
            var app = App(id: "a1", name: "app", createdAt: "t0", updatedAt: "t0")
            try await store.insertApp(app)
            var fn = Self.fn
            try await store.insertFn(fn)
            let first = try await cache.invoked(fn.id, in: store)
            #expect(first.function == FnAPI.definition(app: app, fn: fn))
            #expect(try await cache.invoked(fn.id, in: store) === first, "nothing changed: the same entry")

            fn.image = "img:2"
            try await store.updateFn(fn)
            let afterFn = try await cache.invoked(fn.id, in: store)
            #expect(afterFn.function.image == "img:2")

            app.config = ["A": "changed"]
            try await store.updateApp(app)
            let afterApp = try await cache.invoked(fn.id, in: store)
            #expect(afterApp.function.appConfig["A"] == "changed")
            #expect(afterApp.slotKey != afterFn.slotKey)

            // Another fn's change moves the generation too: the entry is made again, the same.
            var other = Self.fn
            other.id = "f2"
            other.name = "other"
            try await store.insertFn(other)
            try await store.deleteFn(id: other.id)
            #expect(try await cache.invoked(fn.id, in: store).function == afterApp.function)

            try await store.deleteFn(id: fn.id)
            await #expect(throws: RunnerError.self) { try await cache.invoked(fn.id, in: store) }
        }
    }

    @Test func anEntryATriggerMadeIsNotTakenForCurrentByAnInvoke() async throws {
        try await StoreTests().withStore { store, _ in
            let cache = DefinitionCache()
            let app = App(id: "a1", name: "app", createdAt: "t0", updatedAt: "t0")
            try await store.insertApp(app)
            try await store.insertFn(Self.fn)
            // An older version of the fn, as a trigger's caller might have read it.
            var stale = Self.fn
            stale.image = "img:old"
            _ = cache.definition(app: app, fn: stale)
            #expect(try await cache.invoked(Self.fn.id, in: store).function.image == "img:1")
        }
    }
}
