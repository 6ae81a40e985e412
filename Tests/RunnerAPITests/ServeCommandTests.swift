import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner serve` as users run it: the binary, a real image, real containers, SIGTERM.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct ServeCommandTests {
    func freePort() throws -> Int { try Host.freeLoopbackPort() }

    func startServer(
        _ env: TestEnvironment, data: String, port: Int, environment: [String: String] = [:]
    ) async throws -> (Subprocess, HTTPTestClient) {
        try await ServeHarness.start(env, data: data, port: port, environment: environment)
    }

    func deploy(_ c: HTTPTestClient, app: String, fn: String, memory: Int) async throws -> String {
        try await ServeHarness.deploy(c, app: app, fn: fn, memory: memory)
    }

    @Test func aServedFunctionIsCreatedInvokedHotAndTheServerStopsCleanlyOnSIGTERM() async throws {
        try await withHelloStreamData("serve") { env, data in
            let port = try freePort()
            var (server, c) = try await startServer(env, data: data, port: port)

            let fnID = try await deploy(c, app: "served", fn: "hello", memory: 64)
            let cold = try await c.send("POST", "/invoke/\(fnID)", body: Array("cold".utf8))
            #expect(cold.status == 200 && cold.text == "Hello cold", "\(cold.text) \(server.stderr)")
            let hot = try await c.send("POST", "/invoke/\(fnID)", body: Array("hot".utf8))
            #expect(hot.status == 200 && hot.text == "Hello hot")
            let hotID = try #require(hot.header("Fn-Call-Id"))
            let record = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(hotID)")
            #expect((record.json["stats"] as? [String: Any])?["reused_container"] as? Bool == true, "\(record.text)")

            // `fnrunner ps` asks the server for its hot containers.
            let ps = try Subprocess.fnrunner(["ps", "--port", "\(port)"])
            #expect(await ps.exit() == 0, "\(ps.stderr)")
            let row = ps.stdout.split(separator: "\n").dropFirst().first.map { $0.split(separator: " ").map(String.init) } ?? []
            #expect(row.count == 8 && row[1] == fnID && ["idle", "frozen", "busy"].contains(row[2]) && row[4] == "2", "\(ps.stdout)")
            #expect(row.last == hotID, "the last call's id: \(ps.stdout)")
            let psJSON = try Subprocess.fnrunner(["ps", "--port", "\(port)", "--json"])
            #expect(await psJSON.exit() == 0)
            let item = try #require(
                ((try JSONSerialization.jsonObject(with: Data(psJSON.stdout.utf8)) as? [String: Any])?["items"] as? [[String: Any]])?.first)
            #expect(item["last_call_id"] as? String == hotID && item["state_for_ms"] is Int && item["cpu_ms"] is Int, "\(item)")
            #expect((item["memory_current_bytes"] as? Int ?? 0) > 0 && (item["memory_limit_bytes"] as? Int) == 64 << 20, "\(item)")
            // --watch shows the table again and again until interrupted.
            let watching = try Subprocess.fnrunner(["ps", "--port", "\(port)", "--watch", "--interval", "0.2"])
            let tables = { watching.stdout.components(separatedBy: "fnrunner ps: 1 containers at").count - 1 }
            try? await TestSupport.waitUntil { tables() >= 3 }
            watching.signal(SIGINT)
            await watching.exit()
            #expect(tables() >= 3, "\(watching.stdout)")
            // Idle past the freeze delay (50 ms by default): the next call thaws the container first.
            try await c.waitForContainers("paused", count: 1)
            let thawed = try await c.send("POST", "/invoke/\(fnID)", body: Array("thawed".utf8))
            #expect(thawed.text == "Hello thawed")
            let metrics = try await c.send("GET", "/metrics")
            #expect(metrics.text.contains("fn_calls_total{fn_id=\"\(fnID)\",status=\"success\"} 3"))
            let thaws = metrics.text.split(separator: "\n").first { $0.hasPrefix("fn_container_thaw_seconds_count ") }
            #expect(thaws.flatMap { Int($0.split(separator: " ")[1]) } ?? 0 >= 1, "\(metrics.text)")
            #expect(metrics.text.contains("fn_image_pull_seconds_count 0"), "the image was imported, not pulled")

            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty, "the server ended its containers and removed their cgroups")

            // The store outlives the server.
            (server, c) = try await startServer(env, data: data, port: port)
            let apps = try await c.send("GET", "/v2/apps?name=served")
            #expect((apps.json["items"] as? [Any])?.count == 1)
            server.signal(SIGTERM)
            #expect(await server.exit() == 0)
        }
    }

    @Test func theRealPythonFDKAnswersThroughInvokeAndItsHTTPTrigger() async throws {
        try await withSharedGate {
            let env = TestEnvironment("serve")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let layout = try await FDKImage.layout()
            for tag in ["pyfdk", "pyfdk-teapot", "pyfdk-boom"] {
                let imported = try Subprocess.fnrunner(
                    ["import", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, layout,
                     "--name", "fn-test/pyfdk:\(tag)"])
                #expect(await imported.exit() == 0, "\(imported.stderr)")
                #expect(imported.stderr.contains("bytecode layer: "), "the import compiled the FDK: \(imported.stderr)")
            }
            #expect(try FileSystem.list(data + "/bytecode/sha256").count == 3, "one layer per image")
            let (server, c) = try await startServer(env, data: data, port: try freePort())
            defer {
                server.signal(SIGTERM)
                server.reap()
            }
            let appID = try #require(try await c.json("POST", "/v2/apps", ["name": "py"]).json["id"] as? String)
            var fns: [String: String] = [:]
            for tag in ["pyfdk", "pyfdk-teapot", "pyfdk-boom"] {
                let f = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": tag, "image": "fn-test/pyfdk:\(tag)"])
                fns[tag] = try #require(f.json["id"] as? String, "\(f.text)")
                _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fns[tag]!, "name": tag, "type": "http", "source": "/\(tag)"])
            }
            let hello = try await c.send("POST", "/invoke/\(fns["pyfdk"]!)", body: Array("caller".utf8))
            #expect(hello.status == 200 && hello.text == "Hello caller", "\(hello.text) \(server.stderr)")
            #expect(hello.header("Fn-Fdk-Version")?.hasPrefix("fdk-python/") == true)

            // Through the trigger the FDK's gateway status and headers become the HTTP answer.
            let teapot = try await c.send("GET", "/t/py/pyfdk-teapot")
            #expect(teapot.status == 418 && teapot.text == "short and stout", "\(teapot.status) \(teapot.text)")
            let boom = try await c.send("POST", "/invoke/\(fns["pyfdk-boom"]!)")
            #expect(boom.status == 502 && boom.message == "function failed")
            let calls = try await c.send("GET", "/v2/fns/\(fns["pyfdk-boom"]!)/calls")
            #expect((calls.json["items"] as? [[String: Any]])?.first?["status"] as? String == "error")
        }
    }

    @Test func aPythonImageImportedWithoutItsBytecodeGetsItBeforeItsFirstContainer() async throws {
        try await withSharedGate {
            let env = TestEnvironment("servebc")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let imported = try Subprocess.fnrunner(
                ["import", "--data-dir", data, try await FDKImage.layout(), "--name", "fn-test/pyfdk:pyfdk"],
                environment: ["FN_PYTHON_BYTECODE": "false"])
            #expect(await imported.exit() == 0, "\(imported.stderr)")
            #expect(try FileSystem.list(data + "/bytecode/sha256").isEmpty && !imported.stderr.contains("bytecode"))

            let (server, c) = try await startServer(env, data: data, port: try freePort())
            defer {
                server.signal(SIGTERM)
                server.reap()
            }
            let appID = try #require(try await c.json("POST", "/v2/apps", ["name": "pybc"]).json["id"] as? String)
            let fn = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "hello", "image": "fn-test/pyfdk:pyfdk"])
            let fnID = try #require(fn.json["id"] as? String, "\(fn.text)")
            let hello = try await c.send("POST", "/invoke/\(fnID)", body: Array("layered".utf8))
            #expect(hello.status == 200 && hello.text == "Hello layered", "\(hello.text) \(server.stderr)")
            let layers = try FileSystem.list(data + "/bytecode/sha256")
            #expect(layers.count == 1, "serve built the layer before the first start")
            let files = try await Shell.output("find \(data)/bytecode/sha256 -name 'func.cpython-*.pyc' | wc -l")
            #expect(files.trimmed == "1")
        }
    }

    @Test func coldCallsStartFromTheSandboxPoolAndKill9LeavesNoParkedLauncher() async throws {
        try await withHelloStreamData("serve") { env, data in
            let port = try freePort()
            let pool = ["FN_SANDBOX_POOL_SIZE": "2"]
            var (server, c) = try await startServer(env, data: data, port: port, environment: pool)
            func metric(_ name: String) async throws -> Int? {
                PrometheusText.count(of: name, in: try await c.send("GET", "/metrics").text)
            }
            try await waitUntil("the pool is full") { try await metric("fn_sandbox_pool_ready") == 2 }
            let fnID = try await deploy(c, app: "pooled", fn: "hello", memory: 64)
            let cold = try await c.send("POST", "/invoke/\(fnID)", body: Array("pool".utf8))
            #expect(cold.status == 200 && cold.text == "Hello pool", "\(cold.text) \(server.stderr)")
            #expect(try await metric("fn_container_starts_total{path=\"pooled\"}") == 1)
            #expect(try await metric("fn_container_starts_total{path=\"direct\"}") == 0)
            // Its start's phases, as histograms: the pool's claim instead of making cgroups.
            for phase in ["image", "sandbox", "pool_claim", "clone", "exec", "ready"] {
                #expect(try await metric("fn_container_start_phase_seconds_count{phase=\"\(phase)\"}") == 1, "\(phase)")
            }
            #expect(try await metric("fn_container_start_phase_seconds_count{phase=\"cgroup_create\"}") == nil)
            try await waitUntil("the pool refilled") { try await metric("fn_sandbox_pool_ready") == 2 }
            // The server and two parked launchers (the one that launched has exited).
            try await waitUntil("three processes: the server and two parked launchers") { ServeHarness.processes(of: env).count == 3 }

            // Killed: the launchers die with it (parent-death signal), the next server clears the rest.
            server.signal(SIGKILL)
            #expect(await server.exit() == 128 + SIGKILL)
            try await waitUntil("the launchers died with the server") { ServeHarness.processes(of: env).isEmpty }
            (server, c) = try await startServer(env, data: data, port: port, environment: ["FN_SANDBOX_POOL_SIZE": "0"])
            let direct = try await c.send("POST", "/invoke/\(fnID)", body: Array("direct".utf8))
            #expect(direct.text == "Hello direct")
            #expect(try await metric("fn_container_starts_total{path=\"direct\"}") == 1)
            #expect(try await metric("fn_container_start_phase_seconds_count{phase=\"cgroup_create\"}") == 1)
            #expect(try await metric("fn_container_start_phase_seconds_count{phase=\"pool_claim\"}") == nil)
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty, "\(env.cgroupDirectories())")
        }
    }

    @Test func anUnusableStoreOrAddressIsAStartupError() async throws {
        let env = TestEnvironment("serve")
        defer { env.cleanUp() }
        let notADir = "/tmp/fnrunner-serve-file-\(getpid())"
        try "x".write(toFile: notADir, atomically: true, encoding: .utf8)
        defer { unlink(notADir) }
        let badData = try Subprocess.fnrunner(["serve", "--data-dir", notADir, "--state-dir", env.stateDirectory, "--listen", "127.0.0.1:0"])
        #expect(await badData.exit() != 0)
        #expect(badData.stderr.contains(notADir), "\(badData.stderr)")
        let badListen = try Subprocess.fnrunner(["serve", "--listen", "nonsense", "--state-dir", env.stateDirectory])
        #expect(await badListen.exit() != 0)
        #expect(badListen.stderr.contains("--listen must be host:port"), "\(badListen.stderr)")
        for bad in ["65", "-1", "four"] {
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let badPool = try Subprocess.fnrunner(
                ["serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--state-dir", env.stateDirectory],
                environment: ["FN_SANDBOX_POOL_SIZE": bad])
            #expect(await badPool.exit() != 0)
            #expect(badPool.stderr.contains("FN_SANDBOX_POOL_SIZE"), "\(bad): \(badPool.stderr)")
        }
        let noServer = try Subprocess.fnrunner(["ps", "--port", "\(try freePort())"])
        #expect(await noServer.exit() != 0)
        #expect(noServer.stderr.contains("cannot connect"), "\(noServer.stderr)")
    }

    @Test func acceptedDetachedCallsSurviveKill9AndEachEndsUpRunAndRecorded() async throws {
        try await withHelloStreamData("serve") { env, data in
            let port = try freePort()
            let settings = ["FN_MAX_ASYNC_RUNNING": "2"]
            var (server, c) = try await startServer(env, data: data, port: port, environment: settings)
            let fnID = try await deploy(c, app: "durable", fn: "slow", memory: 32)

            var ids: [String] = []
            for i in 0..<10 {
                let r = try await c.send("POST", "/invoke/\(fnID)", body: Array("!sleep \(100 + i)".utf8), headers: [("Fn-Invoke-Type", "detached")])
                #expect(r.status == 202, "\(r.text)")
                ids.append(try #require(r.json["call_id"] as? String))
            }
            // Killed while some calls run and the rest wait in the queue.
            try await waitUntil("a detached call runs") {
                try await c.send("GET", "/v2/fns/\(fnID)/calls/\(ids[0])").json["status"] as? String != "queued"
            }
            let last = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(ids[9])").json["status"] as? String
            server.signal(SIGKILL)
            #expect(await server.exit() == 128 + SIGKILL)
            #expect(last == "queued", "the kill found calls still waiting in the queue")
            // And again right after the restart, while the recovered calls start.
            (server, c) = try await startServer(env, data: data, port: port, environment: settings)
            server.signal(SIGKILL)
            #expect(await server.exit() == 128 + SIGKILL)
            let secondLog = server.stderr

            (server, c) = try await startServer(env, data: data, port: port, environment: settings)
            for (i, id) in ids.enumerated() {
                var record: [String: Any] = [:]
                try await waitUntil("call \(i) ended") {
                    record = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(id)").json
                    return !["queued", "running"].contains(record["status"] as? String ?? "queued")
                }
                #expect(record["status"] as? String == "success", "\(record)")
                let log = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(id)/log")
                #expect(log.text.contains("slept \(100 + i)"), "a call is reported successful only with the function's answer: \(log.text)")
            }
            #expect((secondLog + server.stderr).contains("detached calls of a previous run queued again"), "claims of a killed run were recovered")
            let listed = try await c.send("GET", "/v2/fns/\(fnID)/calls?per_page=100")
            #expect((listed.json["items"] as? [[String: Any]])?.count == ids.count, "one record per accepted call")
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty, "the restarted server cleared what the killed ones left, and its own")
        }
    }

    @Test func realAnswersStreamAreCutAtTheSizeLimitAndAHungUpClientCancelsItsCall() async throws {
        try await withHelloStreamData("serve") { env, data in
            let port = try freePort()
            let (server, c) = try await startServer(env, data: data, port: port, environment: ["FN_MAX_RESPONSE_SIZE": "60"])
            let fnID = try await deploy(c, app: "streams", fn: "drip", memory: 32)
            func containers() async throws -> [[String: Any]] {
                (try await c.send("GET", "/v2/runner/containers").json["items"] as? [[String: Any]]) ?? []
            }

            // The first chunk arrives while the function is still busy writing the others.
            let dripping = try RawHTTPConnection(port: port)
            dripping.send("POST", "/invoke/\(fnID)", body: "!drip 3 400")
            #expect(await dripping.read(until: "drip 0\n"), "\(dripping.text) \(server.stderr)")
            #expect(!dripping.text.contains("drip 2"))
            #expect(try await containers().first?["state"] as? String == "busy", "the call is still running")
            #expect(await dripping.read(until: "\r\n0\r\n\r\n"), "\(dripping.text)")
            #expect(dripping.text.contains("drip 1\n") && dripping.text.contains("drip 2\n"))

            // Past FN_MAX_RESPONSE_SIZE the answer is cut off (no final chunk) and the call is an error.
            let big = try RawHTTPConnection(port: port)
            big.send("POST", "/invoke/\(fnID)", body: "!drip 30 5")
            #expect(await big.read(until: "drip 0\n"))
            _ = await big.read(until: "never arrives", seconds: 10)
            #expect(!big.text.contains("\r\n0\r\n\r\n") && !big.text.contains("drip 29"), "\(big.text)")
            let bigID = try #require(big.text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("fn-call-id:") }.map { String($0.dropFirst(11)).trimmed })
            try await waitUntil("the cut call is recorded") {
                try await c.send("GET", "/v2/fns/\(fnID)/calls/\(bigID)").json["status"] as? String == "error"
            }
            #expect(try await c.send("GET", "/v2/fns/\(fnID)/calls/\(bigID)").json["error"] as? String == "function response body too large")

            // A client that hangs up mid-call: the call is cancelled and its container ended.
            let impatient = try RawHTTPConnection(port: port)
            impatient.send("POST", "/invoke/\(fnID)", body: "!sleep 20000")
            try await waitUntil("the sleeping call runs") { try await containers().contains { $0["state"] as? String == "busy" } }
            impatient.hangUp()
            try await waitUntil("the call is recorded as cancelled") {
                let items = (try await c.send("GET", "/v2/fns/\(fnID)/calls").json["items"] as? [[String: Any]]) ?? []
                return items.contains { $0["status"] as? String == "cancelled" }
            }
            try await waitUntil("its container ended") { try await containers().allSatisfy { $0["state"] as? String != "busy" } }
            let after = try await c.send("POST", "/invoke/\(fnID)", body: Array("after".utf8))
            #expect(after.status == 200 && after.text == "Hello after")
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
        }
    }

    @Test func aPrewarmedFnHasAFrozenInstanceBeforeItsFirstCallAndAgainAfterARestart() async throws {
        try await withHelloStreamData("prewarm") { env, data in
            let port = try freePort()
            var (server, c) = try await startServer(env, data: data, port: port)
            let (_, fnID) = try await ServeHarness.deployApp(
                c, app: "warm", fn: "hello", fnFields: ["annotations": ["fnrunner.io/prewarm": 1]])
            func frozenInstances(unused: Bool = true) async -> Int {
                let items = (try? await c.send("GET", "/v2/runner/containers"))?.json["items"] as? [[String: Any]] ?? []
                return items.filter {
                    $0["fn_id"] as? String == fnID && $0["state"] as? String == "paused" && (!unused || $0["calls"] as? Int == 0)
                }.count
            }
            try await pollUntil { await frozenInstances() == 1 }
            let first = try await c.send("POST", "/invoke/\(fnID)", body: Array("first".utf8))
            #expect(first.status == 200 && first.text == "Hello first")
            let id = try #require(first.header("Fn-Call-Id"))
            let record = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(id)")
            #expect((record.json["stats"] as? [String: Any])?["reused_container"] as? Bool == false, "a prewarmed instance's first call")
            #expect(try await c.send("GET", "/metrics").text.contains("fn_prewarm_hits_total 1"))
            // The used instance is the one kept ahead of demand now (frozen again after the call),
            // and a restart brings an instance back.
            try await pollUntil { await frozenInstances(unused: false) == 1 }
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty)
            (server, c) = try await startServer(env, data: data, port: port)
            try await pollUntil { await frozenInstances() == 1 }
            await ServeHarness.stop(server, env)
        }
    }

    @Test func aSecondServerOnTheSameStoreIsRefused() async throws {
        try await withSharedGate {
            let env = TestEnvironment("serve")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let (server, _) = try await startServer(env, data: data, port: try freePort())
            let other = TestEnvironment("serve2")
            defer { other.cleanUp() }
            let second = try Subprocess.fnrunner(
                ["serve", "--listen", "127.0.0.1:\(try freePort())", "--data-dir", data, "--state-dir", other.stateDirectory, "--cgroup-root", other.cgroupRoot])
            #expect(await second.exit() != 0)
            #expect(second.stderr.contains("in use by another fnrunner serve"), "\(second.stderr)")
            server.signal(SIGTERM)
            #expect(await server.exit() == 0)
        }
    }

    @Test func withCallRecordsOffASyncCallLeavesNoRecordAndADetachedCallKeepsIts() async throws {
        try await withHelloStreamData("serve-norec") { env, data in
            let (server, c) = try await startServer(env, data: data, port: try freePort(), environment: ["FN_CALL_RECORDS": "false"])
            let fnID = try await deploy(c, app: "norec", fn: "hello", memory: 64)
            let sync = try await c.send("POST", "/invoke/\(fnID)", body: Array("sync".utf8))
            #expect(sync.status == 200 && sync.text == "Hello sync", "\(sync.text) \(server.stderr)")
            let syncID = try #require(sync.header("Fn-Call-Id"))
            let detached = try await c.send("POST", "/invoke/\(fnID)", body: Array("later".utf8), headers: [("Fn-Invoke-Type", "detached")])
            #expect(detached.status == 202, "\(detached.text)")
            let detachedID = try #require(detached.json["call_id"] as? String)
            try await waitUntil("the detached call ended") {
                try await c.send("GET", "/v2/fns/\(fnID)/calls/\(detachedID)").json["status"] as? String == "success"
            }
            let missing = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(syncID)")
            #expect(missing.status == 404, "\(missing.text)")
            let list = try await c.send("GET", "/v2/fns/\(fnID)/calls")
            #expect((list.json["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [detachedID], "\(list.text)")
            #expect(server.stderr.contains("call_records=detached calls only") || server.stdout.contains("detached calls only"), "\(server.stderr)")
            server.signal(SIGTERM)
            #expect(await server.exit() == 0)
        }
    }

    /// Polls `condition` every 20 ms for up to 60 s.
    func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<3000 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting until \(what)")
        throw RunnerError(.timeout, what, step: "test")
    }
}
