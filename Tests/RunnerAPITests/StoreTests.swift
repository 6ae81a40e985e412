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

    @Test func namesAreUniqueAndDeletingAnAppDeletesItsFnsAndTriggers() async throws {
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
            let t = Trigger(
                id: CallID.make(), name: "t", appID: a.id, fnID: f.id, source: "/t", annotations: [:], createdAt: a.createdAt, updatedAt: a.createdAt)
            try await store.insertTrigger(t)
            _ = try await store.fn(id: f.id)  // cached now
            try await store.deleteApp(id: a.id)
            await #expect(throws: RunnerError.self) { _ = try await store.app(id: a.id) }
            await #expect(throws: RunnerError.self) { _ = try await store.fn(id: f.id) }
            await #expect(throws: RunnerError.self) { _ = try await store.trigger(id: t.id) }
            await #expect(throws: RunnerError.self) { try await store.deleteApp(id: a.id) }
        }
    }

    @Test func aTriggerRouteIsCachedAndEveryChangeToItsAppOrTriggerIsSeenByTheNextLookup() async throws {
        try await withStore { store, _ in
            var a = app("routes")
            try await store.insertApp(a)
            let f = Fn(id: CallID.make(), appID: a.id, name: "hello", image: "img:1", createdAt: a.createdAt, updatedAt: a.createdAt)
            try await store.insertFn(f)
            var t = Trigger(
                id: CallID.make(), name: "t", appID: a.id, fnID: f.id, source: "/one", annotations: [:], createdAt: a.createdAt, updatedAt: a.createdAt)
            try await store.insertTrigger(t)
            func code(_ name: String, _ source: String) async -> String {
                do throws(RunnerError) {
                    let r = try await store.route(appName: name, type: "http", source: source)
                    return "\(r.app.name) \(r.trigger.source)"
                } catch {
                    return error.message
                }
            }
            #expect(await code("routes", "/one") == "routes /one")
            #expect(await code("routes", "/one") == "routes /one", "from the cache")
            #expect(await code("routes", "/two") == "Trigger not found")
            #expect(await code("nosuch", "/one") == "App not found")
            t.source = "/two"
            try await store.updateTrigger(t)
            #expect(await code("routes", "/one") == "Trigger not found")
            #expect(await code("routes", "/two") == "routes /two")
            a.name = "renamed"
            try await store.updateApp(a)
            #expect(await code("routes", "/two") == "App not found")
            #expect(await code("renamed", "/two") == "renamed /two")
            try await store.deleteTrigger(id: t.id)
            #expect(await code("renamed", "/two") == "Trigger not found")
            try await store.insertTrigger(t)
            #expect(await code("renamed", "/two") == "renamed /two")
            try await store.deleteFn(id: f.id)
            #expect(await code("renamed", "/two") == "Trigger not found", "a fn's triggers go with it")
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

    @Test func pruningAFnWithTensOfThousandsOfCallsKeepsExactlyTheNewest() async throws {
        // A node under load records thousands of calls a second; pruning them must not walk
        // every pair of calls (that took minutes at 50,000 and held the store's writer).
        try await withStore { store, _ in
            func record(_ i: Int, fn: String) -> CallRecord {
                CallRecord(
                    id: "01C" + String(repeating: "0", count: 8 - String(i).count) + String(i), status: .success, appID: "a", appName: "a",
                    fnID: fn, fnName: fn, image: "i", format: "http-stream", type: "sync", memoryMB: 128, cpuMillicores: 0,
                    timeoutSeconds: 30, idleTimeoutSeconds: 30, method: "POST", url: "/", createdAt: "2026-11-29T00:00:00.000Z")
            }
            try await store.saveCalls((0..<30_000).map { (record($0, fn: "busy"), nil) } + (30_000..<30_003).map { (record($0, fn: "quiet"), nil) })
            #expect(try await store.pruneCalls(before: nil, keepPerFn: 100) == 29_900)
            let busy = try await store.calls(fnID: "busy", from: nil, to: nil, cursor: nil, perPage: 200).items.map(\.id)
            #expect(busy.count == 100)
            #expect(busy.first == record(29_999, fn: "busy").id && busy.last == record(29_900, fn: "busy").id)
            #expect(try await store.calls(fnID: "quiet", from: nil, to: nil, cursor: nil, perPage: 10).items.count == 3)
            #expect(try await store.pruneCalls(before: nil, keepPerFn: 0) == 103)
        }
    }

    @Test func aCallThatWroteNothingHasAnEmptyLogOnceEndedAndNoLogBefore() async throws {
        try await withStore { store, _ in
            func record(_ id: String, _ status: CallRecord.Status) -> CallRecord {
                CallRecord(
                    id: id, status: status, appID: "a", appName: "a", fnID: "f1", fnName: "f1", image: "i", format: "http-stream", type: "detached",
                    memoryMB: 128, cpuMillicores: 0, timeoutSeconds: 30, idleTimeoutSeconds: 30, method: "POST", url: "/", createdAt: "2026-11-20T00:00:00.000Z")
            }
            for (i, status) in [CallRecord.Status.success, .error, .timeout, .cancelled].enumerated() {
                try await store.saveCall(record("01E\(i)", status), log: [])
                #expect(try await store.callLog(fnID: "f1", id: "01E\(i)") == [], "\(status)")
            }
            for (i, status) in [CallRecord.Status.queued, .running].enumerated() {
                try await store.saveCall(record("01Q\(i)", status))
                await #expect(throws: RunnerError.self, "\(status)") { _ = try await store.callLog(fnID: "f1", id: "01Q\(i)") }
            }
            // A log written earlier stays the call's log.
            try await store.saveCall(record("01L0", .success), log: Array("out".utf8))
            #expect(try await store.callLog(fnID: "f1", id: "01L0") == Array("out".utf8))
            await #expect(throws: RunnerError.self) { _ = try await store.callLog(fnID: "f2", id: "01L0") }
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

    @Test func aCallRecordIsStoredAndReadBackExactlyWhateverItsTextHolds() async throws {
        try await withStore { store, _ in
            var full = CallRecord(
                id: "01FULL", status: .error, appID: "a", appName: "app \"quoted\"", fnID: "f1", fnName: "fn\\back", image: "img:1",
                format: "http-stream", type: "sync", memoryMB: 128, cpuMillicores: 250, timeoutSeconds: 30, idleTimeoutSeconds: 5,
                method: "PUT", url: "http://fn.test/t/ü/ñ?x=1&y=\u{7f}", createdAt: "2026-11-29T00:00:00.000Z",
                startedAt: "2026-11-29T00:00:00.001Z", completedAt: "2026-11-29T00:00:00.002Z", executionDurationNanos: 1_000_123,
                error: "line one\nline\ttwo\r\u{01}\u{1f} 🎉", errorCode: "function_failed")
            full.stats = CallStats(
                before: ContainerCounters(cpuUsageNanos: 10), after: ContainerCounters(cpuUsageNanos: 50, cpuThrottledPeriods: 2, cpuThrottledNanos: 7, memoryPeakBytes: 4096),
                reusedContainer: true, container: "hot\"1")
            let bare = CallRecord(
                id: "01BARE", status: .queued, appID: "a", appName: "app", fnID: "f1", fnName: "fn", image: "i", format: "default", type: "detached",
                memoryMB: 1, cpuMillicores: 0, timeoutSeconds: 1, idleTimeoutSeconds: 1, method: "POST", url: "", createdAt: "2026-11-29T00:00:00.000Z")
            var large = bare
            large.id = "01LARGE"
            large.status = .success
            large.memoryMB = .max
            large.executionDurationNanos = .max
            large.stats = CallStats(before: nil, after: ContainerCounters(cpuUsageNanos: .max), reusedContainer: false, container: "")
            large.stats?.networkReceivedBytes = 0
            large.stats?.networkSentBytes = 9_007_199_254_740_993  // beyond a Double's integers
            try await store.saveCalls([(full, nil), (bare, nil), (large, nil)])
            #expect(try await store.call(fnID: "f1", id: "01FULL") == full)
            #expect(try await store.call(fnID: "f1", id: "01BARE") == bare)
            #expect(try await store.call(fnID: "f1", id: "01LARGE") == large)
        }
    }

    // MARK: the queue of detached calls

    func detachedCall(_ body: String = "payload") throws -> Call { try call(body, type: Call.detached) }

    /// A call of fn "f1" as an edge makes it (`Call.sync`) or the detached queue does.
    func call(_ body: String = "payload", type: String) throws -> Call {
        let agent = Agent(configuration: .init(), driver: EchoDriver(), tracker: ResourceTracker(totalMemoryBytes: 1 << 30, totalCPUMillicores: 1000))
        let f = FunctionDefinition(appID: "a", appName: "app", fnID: "f1", fnName: "fn", image: "img:1", fnConfig: ["K": "v"])
        return try agent.makeCall(
            f, FunctionRequest(method: "PUT", url: "http://fn.test/t/app/x", contentType: "text/plain", headers: [("X-One", "1")], body: Array(body.utf8)),
            type: type)
    }

    @Test func aQueuedCallKeepsItsRequestAndIsClaimedOnceUntilReleased() async throws {
        try await withStore { store, _ in
            let call = try detachedCall()
            try await store.enqueue(call)
            #expect(try await store.call(fnID: "f1", id: call.id).status == .queued, "visible as queued from the start")
            let claimed = try #require(try await store.claim())
            #expect(claimed.id == call.id && claimed.attempts == 1 && claimed.function == call.function)
            #expect(claimed.method == "PUT" && claimed.contentType == "text/plain" && claimed.headers == [["X-One", "1"]] && claimed.body == Array("payload".utf8))
            #expect(try await store.claim() == nil, "a claimed call is not handed out twice")
            try await store.release(call.id)
            #expect(try await store.claim()?.attempts == 2)
        }
    }

    @Test func completingACallStoresItsEndAndLogAndRemovesItFromTheQueueInOneStep() async throws {
        try await withStore { store, _ in
            let call = try detachedCall()
            try await store.enqueue(call)
            _ = try await store.claim()
            call.log.write("HTTP/1.1 200\r\n\r\nok")
            try await store.complete(call)
            #expect(try await store.queuedCount() == 0)
            #expect(try await store.callLog(fnID: "f1", id: call.id) == Array("HTTP/1.1 200\r\n\r\nok".utf8))
            // A late "running" write from the recorder's batch cannot undo the end.
            let recorder = StoreRecorder(store: store, logger: .init(label: "test"))
            try await recorder.beforeCall(call)
            await recorder.flush()
            #expect(try await store.call(fnID: "f1", id: call.id).status == call.record.status)
        }
    }

    @Test func claimsOfADeadProcessAreQueuedAgainAndPruningNeverDropsAQueuedCall() async throws {
        try await withStore { store, dir in
            let call = try detachedCall()
            try await store.enqueue(call)
            _ = try await store.claim()
            let recorder = StoreRecorder(store: store, logger: .init(label: "test"))
            try await recorder.beforeCall(call)  // the record said running when the process died
            await recorder.flush()
            let reopened = try Store(path: dir + "/fnrunner.db")
            #expect(try await reopened.recoverClaims() == 1)
            let record = try await reopened.call(fnID: "f1", id: call.id)
            #expect(record.status == .queued && record.startedAt == nil)
            #expect(try await reopened.pruneCalls(before: "2999-01-01T00:00:00.000Z", keepPerFn: 0) == 0)
            #expect(try await reopened.claim()?.id == call.id)
        }
    }

    @Test func onlyOneServerMayOwnAStore() async throws {
        try await withStore { store, dir in
            let lock = try store.lockForServing()
            // flock is per open file: a second open in this process is refused like another process would be.
            let again = try Store(path: dir + "/fnrunner.db")
            #expect {
                _ = try again.lockForServing()
            } throws: { error in
                (error as? RunnerError)?.message.contains("in use by another fnrunner serve") == true
            }
            lock.release()
            _ = try again.lockForServing()
        }
    }
}
