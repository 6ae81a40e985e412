import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Fn's answers, asserted over HTTP against `fnrunner serve` with real images and containers:
/// the function wire, the node's limits, pulls that fail, and syslog.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct ServeConformanceTests {
    typealias S = ServeHarness

    /// The API rules FnConformanceTests check in depth (in process, on a stub driver), sampled
    /// here through the binary, so the served router is the one tested.
    @Test func theServedV2APIAnswersAsFnsOwnServer() async throws {
        try await withHelloStreamData("conform-api") { env, data in
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(env, data: data, port: port)
            let notFound = try await c.send("GET", "/v2/nope")
            #expect(notFound.status == 404 && notFound.message == "Path not found: GET /v2/nope" && notFound.text.hasSuffix("}\n"))
            let notAllowed = try await c.send("DELETE", "/v2/apps")
            #expect(notAllowed.status == 405 && notAllowed.message == "Method not allowed: DELETE /v2/apps")
            let garbage = try await c.send("POST", "/v2/apps", body: Array("{".utf8))
            #expect(garbage.status == 400 && garbage.message == "Invalid JSON")

            let app = try await c.json("POST", "/v2/apps", ["name": "api", "colour": "blue"])
            #expect(app.status == 200 && app.json["config"] == nil && app.json["annotations"] == nil, "\(app.text)")
            let appID = try #require(app.json["id"] as? String)
            let rename = try await c.json("PUT", "/v2/apps/\(appID)", ["name": "renamed"])
            #expect(rename.status == 409 && rename.message == "Could not update - name is immutable")
            for name in ["delta", "alpha", "charlie", "bravo"] {
                let fn = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": name, "image": "fn-test/hello-stream:1", "memory": 0])
                #expect(fn.status == 200 && fn.json["memory"] as? Int == 128 && fn.json["timeout"] as? Int == 30, "\(fn.text)")
            }
            let unlisted = try await c.send("GET", "/v2/fns")
            #expect(unlisted.status == 400 && unlisted.message == "Missing AppID on Fn")
            let firstPage = try await c.send("GET", "/v2/fns?app_id=\(appID)&per_page=2")
            let names = (firstPage.json["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            let cursor = try #require(firstPage.json["next_cursor"] as? String)
            let rest = try await c.send("GET", "/v2/fns?app_id=\(appID)&per_page=2&cursor=\(cursor)")
            let more = (rest.json["items"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(names + more == ["alpha", "bravo", "charlie", "delta"])

            // Deleting an app with fns and a trigger deletes them with it.
            let fnID = try #require((firstPage.json["items"] as? [[String: Any]])?.first?["id"] as? String)
            let trigger = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t", "type": "http", "source": "/t"])
            let triggerID = try #require(trigger.json["id"] as? String, "\(trigger.text)")
            #expect(try await c.send("DELETE", "/v2/apps/\(appID)").status == 204)
            #expect(try await c.send("GET", "/v2/fns/\(fnID)").status == 404)
            #expect(try await c.send("GET", "/v2/triggers/\(triggerID)").status == 404)
            await S.stop(server, env)
        }
    }

    @Test func chunkedBodiesEmptyAnswersAndTheResponseHeaderLimitAreFns() async throws {
        try await withHelloStreamData("conform-wire") { env, data in
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(env, data: data, port: port, environment: ["FN_MAX_HDR_RESPONSE_SIZE": "2048"])
            let (appID, fnID) = try await S.deployApp(c, app: "wire", fn: "hello")
            _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t", "type": "http", "source": "/hello"])

            // A chunked request body reaches the function whole, through invoke and a trigger.
            for path in ["/invoke/\(fnID)", "/t/wire/hello"] {
                let raw = try RawHTTPConnection(port: port)
                raw.sendRaw("POST \(path) HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nWor\r\n2\r\nld\r\n0\r\n\r\n")
                #expect(await raw.read(until: "Hello World"), "\(path): \(raw.text)")
            }
            // No body in, and no body out.
            let noBody = try await c.send("POST", "/invoke/\(fnID)")
            #expect(noBody.status == 200 && noBody.text == "Hello World")
            #expect(noBody.header("Server") == nil, "Fn's server names itself nowhere")
            for path in ["/invoke/\(fnID)", "/t/wire/hello"] {
                let empty = try await c.send("POST", path, body: Array("!big 0".utf8))
                #expect(empty.status == 200 && empty.body.isEmpty && empty.header("Content-Length") == "0", "\(path): \(empty.status) \(empty.text)")
            }
            // A chunked answer with trailers leaves nothing behind: the next call reuses the
            // container. A body ended by close is read whole, and the container ends with it.
            func reused(_ r: HTTPTestClient.Answer) async throws -> Bool? {
                let id = try #require(r.header("Fn-Call-Id"))
                let record = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(id)")
                return (record.json["stats"] as? [String: Any])?["reused_container"] as? Bool
            }
            let trailers = try await c.send("POST", "/invoke/\(fnID)", body: Array("!trailers".utf8))
            #expect(trailers.status == 200 && trailers.text == "chunked!\n" && trailers.header("X-Sum") == nil, "\(trailers.text)")
            let behind = try await c.send("POST", "/invoke/\(fnID)", body: Array("behind".utf8))
            let behindReused = try await reused(behind)
            #expect(behind.text == "Hello behind" && behindReused == true)
            let closed = try await c.send("POST", "/invoke/\(fnID)", body: Array("!close".utf8))
            #expect(closed.status == 200 && closed.text == "ended by close", "\(closed.status) \(closed.text)")
            let fresh = try await c.send("POST", "/invoke/\(fnID)", body: Array("fresh".utf8))
            let freshReused = try await reused(fresh)
            #expect(fresh.text == "Hello fresh" && freshReused == false, "a new container after a close-ended body")
            // FN_MAX_HDR_RESPONSE_SIZE bounds the function's response head.
            let small = try await c.send("POST", "/invoke/\(fnID)", body: Array("!hdr 1000".utf8))
            #expect(small.status == 200 && small.header("X-Big")?.count == 1000 && small.text == "big")
            let big = try await c.send("POST", "/invoke/\(fnID)", body: Array("!hdr 4000".utf8))
            #expect(big.status == 502 && big.message == "function response header too large", "\(big.status) \(big.text)")
            let triggered = try await c.send("POST", "/t/wire/hello", body: Array("!hdr 4000".utf8))
            #expect(triggered.status == 502 && triggered.message == "function response header too large")
            let after = try await c.send("POST", "/invoke/\(fnID)", body: Array("again".utf8))
            #expect(after.status == 200 && after.text == "Hello again", "the fn still answers (on a new container)")
            await S.stop(server, env)
        }
    }

    @Test func aFunctionRunsUnderAnInitWithFnsRlimitsAndMayListenLate() async throws {
        try await withHelloStreamData("conform-init") { env, data in
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(env, data: data, port: port)
            let fnID = try await S.deployApp(c, app: "init", fn: "f").fnID
            let pid1 = try await c.send("POST", "/invoke/\(fnID)", body: Array("!file /proc/1/cmdline".utf8))
            #expect(pid1.text.hasPrefix("fnrunner-init\u{0}"), "PID 1 is the init: \(pid1.text)")
            let limits = try await c.send("POST", "/invoke/\(fnID)", body: Array("!file /proc/self/limits".utf8)).text
            for (name, value) in [("Max open files", "350"), ("Max locked memory", "65536"), ("Max pending signals", "5000"), ("Max msgqueue size", "819200")] {
                let line = limits.split(separator: "\n").first { $0.hasPrefix(name) }.map { $0.split(separator: " ").suffix(3) }
                #expect(line.map(Array.init)?.prefix(2).allSatisfy { $0 == value } == true, "\(name): \(limits)")
            }
            // An FDK that binds its final socket name itself and listens late is waited for: its
            // first call is answered, not 500 "cannot connect".
            let late = try await S.deployApp(
                c, app: "late", fn: "f", fnFields: ["config": ["HELLO_BIND_DIRECT": "1", "HELLO_LISTEN_DELAY_MS": "300"]]
            ).fnID
            let first = try await c.send("POST", "/invoke/\(late)", body: Array("late".utf8))
            #expect(first.status == 200 && first.text == "Hello late", "\(first.status) \(first.text)")
            await S.stop(server, env)
        }
    }

    @Test func stdioFormatFunctionsAnswerWithTheirOwnStatusAndHeadersNamedAsGoNamesThem() async throws {
        try await withHelloStreamData("conform-stdio") { env, data in
            try await S.importHelloStream(tag: "sh", into: data)
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(env, data: data, port: port)
            let json = #"while read -r line; do printf '{"body":"made","protocol":{"status_code":201,"headers":{"x-fn":["json"]}}}\n'; done"#
            let (appID, jsonID) = try await S.deployApp(
                c, app: "stdio", fn: "json", image: "fn-test/hello-stream:sh", fnFields: ["format": "json", "config": ["SCRIPT": json]])
            _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": jsonID, "name": "j", "type": "http", "source": "/j"])
            for path in ["/invoke/\(jsonID)", "/t/stdio/j"] {
                let r = try await c.send("POST", path, body: Array("in".utf8))
                #expect(r.status == 201 && r.text == "made", "\(path): \(r.status) \(r.text) \(server.stderr)")
                #expect(r.headers.contains { $0.0 == "X-Fn" && $0.1 == "json" }, "\(path): \(r.headers)")
            }
            let http = #"""
                while read -r l; do
                  while read -r h; do h=$(printf '%s' "$h" | tr -d '\r'); [ -z "$h" ] && break; done
                  printf 'HTTP/1.1 418 Teapot\r\nContent-Length: 3\r\nx-fn: http\r\n\r\ntea'
                done
                """#
            let httpID = try await S.deployApp(
                c, app: "stdio2", fn: "http", image: "fn-test/hello-stream:sh", fnFields: ["format": "http", "config": ["SCRIPT": http]]
            ).fnID
            let teapot = try await c.send("POST", "/invoke/\(httpID)")
            #expect(teapot.status == 418 && teapot.text == "tea" && teapot.headers.contains { $0.0 == "X-Fn" }, "\(teapot.headers)")
            await S.stop(server, env)
        }
    }

    @Test func aBusyNodeAnswers503WithRetryAfter15() async throws {
        try await withHelloStreamData("conform-busy") { env, data in
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(
                env, data: data, port: port, environment: ["FN_ENABLE_NB_RESOURCE_TRACKER": "1", "FN_MAX_TOTAL_MEMORY_BYTES": "\(96 << 20)"])
            let first = try await S.deployApp(c, app: "busy", fn: "one", memory: 64).fnID
            let second = try await S.deployApp(c, app: "busy2", fn: "two", memory: 64).fnID
            // The second fn asks only once the first fn's container is busy with the held call:
            // while it is idle it can be evicted for the second fn, which would then hold the room.
            #expect(try await c.send("POST", "/invoke/\(first)", body: Array("warm".utf8)).status == 200)
            async let holding = c.send("POST", "/invoke/\(first)", body: Array("!sleep 3000".utf8))
            try await c.waitForContainers("busy", count: 1)
            var answer: HTTPTestClient.Answer?
            for _ in 0..<100 {
                try await Task.sleep(for: .milliseconds(100))
                let r = try await c.send("POST", "/invoke/\(second)")
                if r.status == 503 {
                    answer = r
                    break
                }
            }
            let busy = try #require(answer, "a second fn found no room while the first held it")
            #expect(busy.header("Retry-After") == "15" && busy.message == "Timed out - server too busy")
            #expect(try await holding.text == "slept 3000")
            await S.stop(server, env)
        }
    }

    @Test func failedPullsAreFnsFailedToPullImageWithTheRegistrysStatusAndATimeoutIs504() async throws {
        try await withHelloStreamData("conform-pull") { env, data in
            let registry = try await RegistryServer(.plain)
            defer { registry.stop() }
            let guarded = try await RegistryServer(.basicAuth)
            defer { guarded.stop() }
            let silent = try SyslogReceiver(.tcp)  // accepts connections and never answers
            let closed = try Host.freeLoopbackPort()
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(env, data: data, port: port, environment: ["FN_HOT_PULL_TIMEOUT_MSECS": "1000"])
            let cases: [(image: String, status: Int, prefix: String)] = [
                ("\(registry.host)/nope/missing:1", 404, "Failed to pull image '\(registry.host)/nope/missing:1': "),
                ("\(guarded.host)/nope/guarded:1", 401, "Failed to pull image '\(guarded.host)/nope/guarded:1': "),
                ("127.0.0.1:\(closed)/nope/closed:1", 502, "Failed to pull image '127.0.0.1:\(closed)/nope/closed:1': "),
                ("127.0.0.1:\(silent.port)/nope/silent:1", 504, "Image pull timed out"),
            ]
            for (i, t) in cases.enumerated() {
                let fnID = try await S.deployApp(c, app: "pull\(i)", fn: "f", image: t.image).fnID
                let r = try await c.send("POST", "/invoke/\(fnID)")
                #expect(r.status == t.status && r.message?.hasPrefix(t.prefix) == true, "\(t.image): \(r.status) \(r.text)")
            }
            await S.stop(server, env)
        }
    }

    @Test func anImageThatDeclaresAVolumeIs400() async throws {
        try await withHelloStreamData("conform-volume") { env, data in
            let imported = try Subprocess.fnrunner(["import", "--data-dir", data, try await ImageFixtures.directory() + "/layers", "--name", "t/layers:volumes"])
            #expect(await imported.exit() == 0, "\(imported.stderr)")
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(env, data: data, port: port)
            let fnID = try await S.deployApp(c, app: "vol", fn: "f", image: "t/layers:volumes").fnID
            let r = try await c.send("POST", "/invoke/\(fnID)")
            #expect(r.status == 400 && r.message?.hasPrefix("image has Volume definition (/data)") == true, "\(r.status) \(r.text)")
            await S.stop(server, env)
        }
    }

    @Test func tmpAndIofsAreBoundedTmpByTheFunctionsMemoryAndIofsByItsOwnSize() async throws {
        try await withHelloStreamData("conform-tmpfs") { env, data in
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(env, data: data, port: port)
            let fnID = try await S.deployApp(c, app: "tmpfs", fn: "f", memory: 32).fnID
            let small = try await c.send("POST", "/invoke/\(fnID)", body: Array("!fill /tmp/small 1024".utf8))
            #expect(small.text == "wrote 1048576 bytes: ok", "\(small.status) \(small.text)")
            let iofs = try await c.send("POST", "/invoke/\(fnID)", body: Array("!fill /tmp/iofs/big 2048".utf8))
            let written = iofs.text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? -1
            #expect(iofs.status == 200 && iofs.text.hasSuffix("No space left on device") && written <= 1 << 20, "\(iofs.text)")
            // /tmp is a tmpfs whose pages are the function's memory: 64 MiB do not fit in 32 MB, and
            // the cgroup's OOM killer ends the function; the next call gets a new, empty /tmp.
            let full = try await c.send("POST", "/invoke/\(fnID)", body: Array("!fill /tmp/big 65536".utf8))
            #expect(full.status == 502 && full.message?.hasPrefix("container out of memory") == true, "\(full.status) \(full.text)")
            let next = try await c.send("POST", "/invoke/\(fnID)", body: Array("!fill /tmp/small 1024".utf8))
            #expect(next.text == "wrote 1048576 bytes: ok", "\(next.status) \(next.text)")
            await S.stop(server, env)
        }
    }

    @Test func functionOutputReachesTheAppsSyslogOverUDPAndTCPAsDockersDriverSendsIt() async throws {
        try await withHelloStreamData("conform-syslog") { env, data in
            let udp = try SyslogReceiver(.udp)
            let tcp = try SyslogReceiver(.tcp)
            let closed = try Host.freeLoopbackPort()
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await S.start(env, data: data, port: port)
            for receiver in [udp, tcp] {
                let app = "syslog-\(receiver.transport.rawValue)"
                let (appID, fnID) = try await S.deployApp(c, app: app, fn: "f", appFields: ["syslog_url": receiver.url])
                let r = try await c.send("POST", "/invoke/\(fnID)", body: Array("!stderr to \(app)".utf8))
                #expect(r.status == 200 && r.text == "logged", "\(r.status) \(r.text)")
                #expect(await receiver.waitFor("to \(app)\n"), "\(receiver.text)")
                // <user.info>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG, the tag as APP-NAME and MSGID.
                let tag = "app_id=\(appID),fn_id=\(fnID)"
                let line = receiver.text.split(separator: "\n").first { $0.hasSuffix("to \(app)") }.map(String.init) ?? ""
                let fields = line.split(separator: " ", maxSplits: 7).map(String.init)
                #expect(fields.count == 8 && fields[0] == "<14>1" && fields[3] == tag && fields[5] == tag && fields[6] == "-", "\(line)")
                #expect(fields.count == 8 && fields[1].hasSuffix("Z") && Int(fields[4]) == Int(server.pid), "\(line)")
            }
            // A syslog that cannot be reached: Fn's 500, and no container is left running.
            let (_, unreachable) = try await S.deployApp(c, app: "syslog-closed", fn: "f", appFields: ["syslog_url": "tcp://127.0.0.1:\(closed)"])
            let r = try await c.send("POST", "/invoke/\(unreachable)")
            #expect(r.status == 500 && r.message?.hasPrefix("Syslog Unavailable") == true, "\(r.status) \(r.text)")
            await S.stop(server, env)
        }
    }
}
