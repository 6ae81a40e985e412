import Foundation
import Runner
import RunnerOS
import RunnerStore
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a client or a broken store cannot do to a node: hold connections open forever, make the
/// server wait for a body it declared too large, or have a store failure reported as the
/// function's (502); and fns that could never run are refused when made.
struct NodeProtectionTests {
    typealias H = APIHarness

    @Test func aConnectionThatSendsNothingOrHalfAHeadIsClosedAfterTheIdleTimeout() async throws {
        try await H.withServer(clientIdleTimeoutMillis: 300) { c, _ in
            let silent = try RawHTTPConnection(port: c.port)
            let halfHead = try RawHTTPConnection(port: c.port)
            halfHead.sendRaw("POST /v2/apps HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            // Closed at 300 ms when the machine is quiet; the bound is generous because the close
            // runs on the server's tasks, which a loaded machine (the whole suite on two cores)
            // can delay by seconds. Without the idle timeout neither would ever close.
            #expect(await silent.waitForClose(seconds: 30), "a silent connection is closed")
            #expect(await halfHead.waitForClose(seconds: 30), "a stalled head is closed")
        }
    }

    @Test func aCallLongerThanTheIdleTimeoutIsNotCut() async throws {
        try await H.withServer(clientIdleTimeoutMillis: 300) { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let r = try await c.send("POST", "/invoke/\(fnID)", body: Array("sleep:900".utf8))
            #expect(r.status == 200, "\(r.text)")
        }
    }

    @Test func aDeclaredLengthOverTheLimitIs413AtOnceWithoutItsBody() async throws {
        try await H.withServer(maxRequestBytes: 1000) { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let conn = try RawHTTPConnection(port: c.port)
            conn.sendRaw("POST /invoke/\(fnID) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999\r\n\r\n")
            // Without the body: a server that waited for it would never answer. The bound is
            // generous for the same reason as the idle test's above (it once took over 5 s in a
            // full run under two CPU hogs).
            #expect(await conn.read(until: "413", seconds: 30), "\(String(decoding: conn.received, as: UTF8.self))")
        }
    }

    @Test func aDamagedStoreIsAnInternalErrorNotAFunctionFailure() async throws {
        try await H.withServer { c, store in
            let (_, fnID) = try await H.appAndFn(c)
            try await Shell.run(
                "python3 -c \"import sqlite3; c=sqlite3.connect('\(store.path)'); c.execute('ALTER TABLE fn RENAME TO fn_gone'); c.commit()\"")
            let invoke = try await c.send("POST", "/invoke/other-fn-\(fnID)")
            #expect(invoke.status == 500, "\(invoke.status) \(invoke.text)")
            #expect(invoke.message?.contains("store") == true, "\(invoke.text)")
            let list = try await c.send("GET", "/v2/fns?app_id=x")
            #expect(list.status == 500 && list.message?.contains("the store failed") == true, "\(list.text)")
        }
    }

    @Test func fnsThatCouldNeverStartAreRefusedWhenCreatedOrUpdated() async throws {
        try await H.withServer { c, _ in
            let app = try await c.json("POST", "/v2/apps", ["name": "checks"])
            let appID = try #require(app.json["id"] as? String)
            for (extra, message) in [
                (["image": "Bad Image!"], "invalid image reference"),
                (["image": "fn-test/x:1", "memory": 5], "below the minimum of 6 MiB"),
                (["image": "fn-test/x:1", "memory": 1], "below the minimum of 6 MiB"),
                (["image": "fn-test/x:1", "cpus": 9], "CPU limit 9 millicores is out of range"),
            ] as [([String: Any], String)] {
                var body: [String: Any] = ["app_id": appID, "name": "f\(UInt32.random(in: 0...UInt32.max))"]
                body.merge(extra) { $1 }
                let r = try await c.json("POST", "/v2/fns", body)
                #expect(r.status == 400 && r.message?.contains(message) == true, "\(extra): \(r.status) \(r.text)")
            }
            let fn = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "ok", "image": "fn-test/x:1", "memory": 6, "cpus": 10])
            let fnID = try #require(fn.json["id"] as? String, "\(fn.text)")
            let update = try await c.json("PUT", "/v2/fns/\(fnID)", ["cpus": 3])
            #expect(update.status == 400 && update.message?.contains("CPU limit 3") == true, "\(update.text)")
            #expect(try await c.send("GET", "/v2/fns/\(fnID)").json["cpus"] as? Int == 10, "a refused update changes nothing")
        }
    }
}

extension ServeCommandTests {
    @Test func aBadLimitFoundAtStartupLeavesNoCgroupBehind() async throws {
        let env = TestEnvironment("late")
        defer { env.cleanUp() }
        let data = env.stateDirectory + "-data"
        defer { try? FileSystem.removeTree(data) }
        for (name, value) in [("FN_MAX_TOTAL_MEMORY_BYTES", "-5"), ("FN_MAX_TOTAL_CPU_MCPUS", "lots"), ("FN_CLIENT_IDLE_TIMEOUT_MSECS", "-1"),
            ("FN_EVENT_LOOPS", "0"), ("FN_EVENT_LOOPS", "5000"), ("FN_CALL_RECORDS", "maybe"),
        ] {
            let server = try Subprocess.fnrunner(
                ["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot],
                environment: [name: value, "FN_SANDBOX_POOL_SIZE": "2"])
            #expect(await server.exit() != 0)
            #expect(server.stderr.contains(name), "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty, "\(name)=\(value) left \(env.cgroupDirectories())")
        }
    }

    @Test func anEmptyOrTruncatedStoreFileIsRefusedByName() async throws {
        let env = TestEnvironment("dbfile")
        defer { env.cleanUp() }
        let data = env.stateDirectory + "-data"
        try FileSystem.makeDirectories(data, mode: 0o700)
        defer { try? FileSystem.removeTree(data) }
        let db = data + "/fnrunner.db"
        func serve() throws -> Subprocess {
            try Subprocess.fnrunner(
                ["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot])
        }
        try FileSystem.create(db, contents: "")
        let empty = try serve()
        #expect(await empty.exit() != 0)
        #expect(empty.stderr.contains(db) && empty.stderr.contains("empty file"), "\(empty.stderr)")
        #expect(FileSystem.size(db) == 0, "the file is left as it was")

        // A database in WAL mode whose last writes are still in the log, then cut short.
        try FileSystem.removeTree(data)
        try FileSystem.makeDirectories(data, mode: 0o700)
        try await Shell.run(
            """
            python3 -c "
            import os, sqlite3
            c = sqlite3.connect('\(db)'); c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)')
            c.executemany('INSERT INTO t VALUES (?)', [('x' * 1000,)] * 400); c.commit(); c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
            c.executemany('INSERT INTO t VALUES (?)', [('y' * 1000,)] * 10); c.commit(); os._exit(0)"
            truncate -s 16384 \(db)
            """)
        #expect(FileSystem.exists(db + "-wal"))
        let truncated = try serve()
        #expect(await truncated.exit() != 0)
        #expect(truncated.stderr.contains(db) && truncated.stderr.contains("truncated"), "\(truncated.stderr)")
    }
}
