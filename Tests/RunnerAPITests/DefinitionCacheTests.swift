import Runner
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
        let (first, firstKey) = cache.definition(app: Self.app, fn: Self.fn)
        let (again, againKey) = cache.definition(app: Self.app, fn: Self.fn)
        #expect(first == FnAPI.definition(app: Self.app, fn: Self.fn))
        #expect(again == first)
        #expect(firstKey == first.slotKey && againKey == first.slotKey)
        #expect(first.freezeIdleMillis == 50)
        #expect(cache.count == 1)
    }

    @Test func anUpdatedFnOrAppIsSeenByTheNextDefinition() {
        let cache = DefinitionCache()
        let (before, beforeKey) = cache.definition(app: Self.app, fn: Self.fn)
        var fn = Self.fn
        fn.annotations[FunctionDefinition.freezeIdleAnnotation] = .number(75)
        let (updated, updatedKey) = cache.definition(app: Self.app, fn: fn)
        #expect(updated.freezeIdleMillis == 75)
        #expect(updatedKey == updated.slotKey && updatedKey != beforeKey)
        var app = Self.app
        app.config["A"] = "changed"
        let (appUpdated, appKey) = cache.definition(app: app, fn: fn)
        #expect(appUpdated.appConfig["A"] == "changed")
        #expect(appKey == appUpdated.slotKey && appKey != updatedKey)
        // And back: the old versions give the old definition again, not a cached newer one.
        #expect(cache.definition(app: Self.app, fn: Self.fn).0 == before)
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
                let (definition, key) = cache.definition(app: Self.app, fn: fn)
                #expect(definition == FnAPI.definition(app: Self.app, fn: fn), "round \(round)")
                #expect(key == definition.slotKey)
                #expect(cache.count <= 2)
            }
        }
    }
}
