import Foundation
import Runner
import RunnerOS
import RunnerStore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store: what it keeps, across reopening, and what it refuses.
struct StoreTests {
    func withStore(_ body: (Store, String) async throws -> Void) async throws {
        let dir = "/tmp/fnrunner-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(dir, mode: 0o700)
        defer { try? FileSystem.removeTree(dir) }
        try await body(try Store(path: dir + "/fnrunner.db"), dir)
    }

    func app(_ name: String) -> App { App(id: CallID.make(), name: name, createdAt: "2026-11-29T00:00:00.000Z", updatedAt: "2026-11-29T00:00:00.000Z") }

    @Test func appsAndFnsSurviveReopeningTheStore() async throws {
        try await withStore { store, dir in
            let a = app("myapp")
            try await store.insertApp(a)
            let f = Fn(id: CallID.make(), appID: a.id, name: "hello", image: "img:1", createdAt: a.createdAt, updatedAt: a.createdAt)
            try await store.insertFn(f)
            let reopened = try Store(path: dir + "/fnrunner.db")
            #expect(try await reopened.app(named: "myapp") == a)
            #expect(try await reopened.fn(id: f.id) == f)
        }
    }

    @Test func namesAreUniqueAndAnAppWithFnsCannotBeDeleted() async throws {
        try await withStore { store, _ in
            let a = app("myapp")
            try await store.insertApp(a)
            await #expect(throws: RunnerError.self) { try await store.insertApp(app("myapp")) }
            let f = Fn(id: CallID.make(), appID: a.id, name: "hello", image: "img:1", createdAt: a.createdAt, updatedAt: a.createdAt)
            try await store.insertFn(f)
            let again = Fn(id: CallID.make(), appID: a.id, name: "hello", image: "img:2", createdAt: a.createdAt, updatedAt: a.createdAt)
            do throws(RunnerError) {
                try await store.insertFn(again)
                Issue.record("a second fn with the same name must be refused")
            } catch {
                #expect(error.code == .conflict && error.message == "Fn with specified name already exists")
            }
            do throws(RunnerError) {
                try await store.deleteApp(id: a.id)
                Issue.record("an app with fns must not be deleted")
            } catch {
                #expect(error.code == .conflict)
            }
            try await store.deleteFn(id: f.id)
            try await store.deleteApp(id: a.id)
            await #expect(throws: RunnerError.self) { _ = try await store.app(id: a.id) }
        }
    }

    @Test func listingsPageByCursor() async throws {
        try await withStore { store, _ in
            for i in 0..<7 { try await store.insertApp(app("app\(i)")) }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await store.apps(name: nil, cursor: cursor, perPage: 3)
                seen += page.items.map(\.name)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(seen.sorted() == (0..<7).map { "app\($0)" })
        }
    }

    @Test func aStoreThatIsNotADatabaseIsAClearStartupError() async throws {
        let path = "/tmp/fnrunner-notadb-\(getpid())"
        try String(repeating: "this is not a database\n", count: 40).write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        #expect {
            _ = try Store(path: path)
        } throws: { error in
            (error as? RunnerError)?.message.contains(path) == true
        }
    }

    @Test func pruningKeepsTheNewestCallsOfEachFnAndDropsOldOnesWithTheirLogs() async throws {
        try await withStore { store, _ in
            func record(_ id: String, fn: String, at time: String) -> CallRecord {
                CallRecord(
                    id: id, status: .success, appID: "a", appName: "a", fnID: fn, fnName: fn, image: "i", format: "http-stream", type: "sync",
                    memoryMB: 128, cpuMillicores: 0, timeoutSeconds: 30, idleTimeoutSeconds: 30, method: "POST", url: "/", createdAt: time)
            }
            for i in 0..<5 { try await store.saveCall(record("01A\(i)", fn: "f1", at: "2026-11-2\(i)T00:00:00.000Z"), log: Array("log\(i)".utf8)) }
            try await store.saveCall(record("01B0", fn: "f2", at: "2026-11-28T00:00:00.000Z"), log: [])
            #expect(try await store.pruneCalls(before: "2026-11-21T00:00:00.000Z", keepPerFn: nil) == 1)
            #expect(try await store.pruneCalls(before: nil, keepPerFn: 2) == 2)
            let left = try await store.calls(fnID: "f1", from: nil, to: nil, cursor: nil, perPage: 10).items.map(\.id)
            #expect(left == ["01A4", "01A3"])
            #expect(try await store.callLog(fnID: "f1", id: "01A4") == Array("log4".utf8))
            await #expect(throws: RunnerError.self) { _ = try await store.callLog(fnID: "f1", id: "01A1") }
            #expect(try await store.calls(fnID: "f2", from: nil, to: nil, cursor: nil, perPage: 10).items.count == 1)
        }
    }
}
