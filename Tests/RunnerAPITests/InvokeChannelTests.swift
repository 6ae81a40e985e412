import Foundation
import HTTPTypes
import Runner
import RunnerOS
import TestSupport
import Testing

@testable import RunnerAPI

/// Invokes answered on their connection's event loop (`InvokeChannelHandler`) answer as the
/// router answers them, keep their place among everything else a connection asks, and end as a
/// client expects (Connection: close, a client that leaves).
struct InvokeChannelTests {
    typealias H = APIHarness

    static func invoke(_ fnID: String, _ body: String, extra: String = "") -> String {
        "POST /invoke/\(fnID) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)"
    }

    static func get(_ path: String) -> String { "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" }

    /// Status line, header names (lower case, without the ones whose values always differ) and
    /// body of one whole answer with a Content-Length.
    static func shape(_ raw: String) -> (status: String, names: [String], body: String) {
        let parts = raw.components(separatedBy: "\r\n\r\n")
        let lines = parts[0].components(separatedBy: "\r\n")
        let names = lines.dropFirst().map { String($0.prefix { $0 != ":" }).lowercased() }
        return (lines[0], names.filter { $0 != "date" }.sorted(), parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// A server with one fn, a fresh name for the test's signals, and a raw connection.
    static func withConnection(_ body: (HTTPTestClient, String, String, RawHTTPConnection) async throws -> Void) async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            try await body(c, fnID, StreamingTests.uniqueName(), try RawHTTPConnection(port: c.port))
        }
    }

    @Test func pipelinedRequestsAreAnsweredInTheOrderTheyWereSent() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let conn = try RawHTTPConnection(port: c.port)
            // Router, slow invoke, router, two invokes, router: all written at once.
            conn.sendRaw(
                Self.get("/version") + Self.invoke(fnID, "sleep:200") + Self.get("/health") + Self.invoke(fnID, "one")
                    + Self.invoke(fnID, "two") + Self.get("/v2/apps"))
            #expect(await conn.read(until: "\"items\""), "\(conn.text)")
            let text = conn.text
            let markers = ["\"version\"", "slept", "\"status\":\"ok\"", "echo:one", "echo:two", "\"items\""]
            let offsets = markers.map { text.range(of: $0)?.lowerBound }
            #expect(!offsets.contains(nil), "every answer arrived: \(text)")
            let found = offsets.compactMap { $0 }
            #expect(found == found.sorted(), "in the order asked: \(text)")
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 6, "\(text)")
        }
    }

    @Test func aRequestWithAnAbsoluteFormTargetReachesItsRoute() async throws {
        try await H.withServer { c, _ in
            let conn = try RawHTTPConnection(port: c.port)
            conn.sendRaw("GET http://127.0.0.1:\(c.port)/version?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(await conn.read(until: "\"version\""), "\(conn.text)")
            #expect(conn.text.hasPrefix("HTTP/1.1 200 OK"), "\(conn.text)")
        }
    }

    @Test func anInvokeAskingToCloseGetsItsWholeAnswerAndThenTheConnectionCloses() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let conn = try RawHTTPConnection(port: c.port)
            // An answer larger than a socket's buffer: closing must not drop its unsent end.
            let body = String(repeating: "0123456789abcdef", count: 40_000) + "the-end"
            conn.sendRaw(Self.invoke(fnID, body, extra: "Connection: close\r\n"))
            #expect(await conn.read(until: "the-end"), "\(conn.text.prefix(300))")
            #expect(await conn.waitForClose(seconds: 30), "closed after the answer")
        }
    }

    @Test func aRequestTheRouterClosesOnLeavesWhatWasPipelinedBehindItUnrun() async throws {
        try await Self.withConnection { c, fnID, name, conn in
            conn.sendRaw(
                "GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" + Self.invoke(fnID, "hold:\(name)"))
            #expect(await conn.read(until: "\"version\""), "\(conn.text)")
            #expect(await conn.waitForClose(seconds: 30), "closed after the answer asked for")
            try await Task.sleep(for: .milliseconds(200))
            #expect(!TestSignals.event(name + ".started").hasFired, "the invoke behind it never ran")
        }
    }

    @Test func aStreamedAnswersHeadReachesTheClientBeforeAnyOfItsBody() async throws {
        try await Self.withConnection { c, fnID, name, conn in
            conn.sendRaw(Self.invoke(fnID, "quiet:\(name)"))
            #expect(await conn.read(until: "\r\n\r\n"), "the head arrives while the function waits: \(conn.text)")
            let head = conn.text.lowercased()
            #expect(head.hasPrefix("http/1.1 200 ok") && head.contains("x-fn: quiet") && head.contains("transfer-encoding: chunked"), "\(head)")
            #expect(!head.contains("late"))
            TestSignals.event(name + ".go").fire()
            #expect(await conn.read(until: "late\n\r\n0\r\n\r\n"), "\(conn.text)")
        }
    }

    @Test func invokesTheRouterTakesGetTheSameAnswersAsTheEventLoopGives() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            // A cold call's task runs off the loop, and its answer is written on it.
            let (_, coldID) = try await H.appAndFn(c, app: "coldapp", fn: "cold", extra: ["format": "default"])
            // A chunked body goes to the router; the same request with a Content-Length does not.
            func chunked(_ id: String, _ body: String) -> String {
                "POST /invoke/\(id) HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + String(body.utf8.count, radix: 16) + "\r\n\(body)\r\n0\r\n\r\n"
            }
            for (id, body, marker) in [
                (fnID, "x", "echo:x"), (fnID, "stub", "stubbed"), (coldID, "cold-x", "cold-x"), ("NOPE", "x", "Fn not found\"}\n"),
            ] {
                let loop = try RawHTTPConnection(port: c.port)
                loop.sendRaw(Self.invoke(id, body, extra: "Connection: close\r\n"))
                let router = try RawHTTPConnection(port: c.port)
                router.sendRaw(chunked(id, body) + Self.get("/health"))
                #expect(await loop.read(until: marker), "\(loop.text)")
                #expect(await router.read(until: "\"status\":\"ok\""), "\(router.text)")
                let routerAnswer = router.text.components(separatedBy: "HTTP/1.1 200 OK\r\nContent-Type: application/json")[0]
                let (a, b) = (Self.shape(loop.text), Self.shape(routerAnswer))
                #expect(a.status == b.status && a.body == b.body, "\(loop.text) ≠ \(routerAnswer)")
                #expect(a.names.filter { $0 != "connection" } == b.names, "\(a.names) ≠ \(b.names)")
            }
        }
    }

    @Test func triggersTheRouterTakesGetTheSameAnswersAsTheEventLoopGives() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t", "type": "http", "source": "/greet/deep"])
            // A chunked body goes to the router; the same request with a Content-Length does not.
            for (path, body, marker) in [
                ("/t/myapp/greet/deep?x=1", "stub", "stubbed"), ("/t/myapp/greet/deep", "x", "echo:x"),
                ("/t/myapp/nothing", "x", "not found\"}\n"),
            ] {
                let loop = try RawHTTPConnection(port: c.port)
                loop.sendRaw(
                    "PUT \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
                let router = try RawHTTPConnection(port: c.port)
                router.sendRaw(
                    "PUT \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n" + String(body.utf8.count, radix: 16)
                        + "\r\n\(body)\r\n0\r\n\r\n" + Self.get("/health"))
                #expect(await loop.read(until: marker), "\(loop.text)")
                #expect(await loop.waitForClose(seconds: 30), "Connection: close")
                #expect(await router.read(until: "\"status\":\"ok\""), "\(router.text)")
                let routerAnswer = router.text.components(separatedBy: "HTTP/1.1 200 OK\r\nContent-Type: application/json")[0]
                let (a, b) = (Self.shape(loop.text), Self.shape(routerAnswer))
                #expect(a.status == b.status && a.body == b.body, "\(loop.text) ≠ \(routerAnswer)")
                #expect(a.names == b.names, "\(a.names) ≠ \(b.names)")
            }
        }
    }

    @Test(arguments: [
        ("POST", "/invoke/01ABC", nil, InvokeTarget.invoke(fnID: "01ABC")),
        ("POST", "/invoke/01ABC?x=1&y", "5", .invoke(fnID: "01ABC")),
        ("GET", "/t/app", nil, .trigger(app: "app", source: "/")),
        ("DELETE", "/t/my-app/a.b/c_d~e?q=/x", "0", .trigger(app: "my-app", source: "/a.b/c_d~e")),
        ("OPTIONS", "/t/app/x", nil, .trigger(app: "app", source: "/x")),
    ] as [(String, String, String?, InvokeTarget)])
    func usualInvokesAndTriggersAreTakenOnTheLoop(method: String, path: String, length: String?, expected: InvokeTarget) {
        var head = HTTPRequest(method: HTTPRequest.Method(method)!, scheme: "http", authority: "h", path: path)
        if let length { head.headerFields[.contentLength] = length }
        #expect(InvokeTarget(head, FnAPI.Configuration()) == expected)
    }

    @Test(arguments: [
        ("GET", "/invoke/01ABC", [String: String]()), ("POST", "/invoke/", [:]), ("POST", "/invoke/a%20b", [:]),
        ("POST", "/invoke/01ABC/more", [:]), ("HEAD", "/t/app/x", [:]), ("GET", "/t/app/", [:]), ("GET", "/t/app//x", [:]),
        ("GET", "/t/app/../x", [:]), ("GET", "/t/app/%41", [:]), ("GET", "/t/", [:]), ("GET", "/version", [:]),
        ("POST", "/invoke/01ABC", ["Content-Length": "7"]), ("POST", "/invoke/01ABC", ["Content-Length": "lots"]),
        ("POST", "/invoke/01ABC", ["Transfer-Encoding": "chunked"]), ("POST", "/invoke/01ABC", ["Fn-Invoke-Type": "Detached"]),
    ])
    func everyOtherRequestGoesToTheRouter(method: String, path: String, fields: [String: String]) {
        var head = HTTPRequest(method: HTTPRequest.Method(method)!, scheme: "http", authority: "h", path: path)
        for (name, value) in fields { head.headerFields[HTTPField.Name(name)!] = value }
        var configuration = FnAPI.Configuration()
        configuration.maxRequestBytes = 6
        #expect(InvokeTarget(head, configuration) == nil)
    }

    @Test func aServerThatTracesRequestsLeavesEveryCallToTheRouter() {
        var configuration = FnAPI.Configuration()
        configuration.tracesRequests = true
        let head = HTTPRequest(method: .post, scheme: "http", authority: "h", path: "/invoke/01ABC")
        #expect(InvokeTarget(head, configuration) == nil)
    }

    @Test func aClientThatClosesItsSideWhileItsInvokeRunsCancelsTheCall() async throws {
        try await Self.withConnection { c, fnID, name, conn in
            conn.sendRaw(Self.invoke(fnID, "hold:\(name)"))
            try await StreamingTests.waitFor(TestSignals.event(name + ".started"), "the call runs")
            conn.closeWriting()
            #expect(await conn.read(until: "HTTP/1.1 444"), "Fn's answer to a client that left: \(conn.text)")
            let calls = try await StreamingTests.endedCalls(c, fnID: fnID, count: 1)
            #expect(calls.first?["status"] as? String == "cancelled", "\(calls)")
        }
    }

    @Test func aClientThatResetsItsConnectionWhileItsInvokeRunsCancelsTheCall() async throws {
        try await Self.withConnection { c, fnID, name, conn in
            conn.sendRaw(Self.invoke(fnID, "hold:\(name)"))
            try await StreamingTests.waitFor(TestSignals.event(name + ".started"), "the call runs")
            conn.reset()
            // The call holds until it is cancelled: nothing else ends it.
            let calls = try await StreamingTests.endedCalls(c, fnID: fnID, count: 1)
            #expect(calls.first?["status"] as? String == "cancelled", "\(calls)")
            let version = try await c.send("GET", "/version")
            #expect(version.status == 200, "the server goes on: \(version.text)")
        }
    }

    @Test func aStreamedAnswerTheClientDoesNotTakeInTimeIsCutOffAndTheCallTimesOut() async throws {
        try await Self.withConnection { c, fnID, _, conn in
            // 128 MiB the client never reads: the socket buffers fill, and a chunk waits.
            conn.sendRaw(Self.invoke(fnID, "flood:2048"))
            let calls = try await StreamingTests.endedCalls(c, fnID: fnID, count: 1)
            #expect(calls.first?["status"] as? String == "timeout", "\(calls)")
            #expect(await conn.waitForClose(seconds: 30), "the answer is cut off")
            let version = try await c.send("GET", "/version")
            #expect(version.status == 200, "the server goes on: \(version.text)")
        }
    }

    @Test func aClientPipeliningBehindARunningCallIsReadNoFurtherThanItsNextRequest() async throws {
        try await Self.withConnection { c, fnID, name, conn in
            conn.sendRaw(Self.invoke(fnID, "hold:\(name)"))
            try await StreamingTests.waitFor(TestSignals.event(name + ".started"), "the call runs")
            // 64 MiB of invokes behind it: the server holds one read of them, the kernel's
            // socket buffers (a few MiB on loopback) hold the rest, and then the client waits.
            let sent = await conn.sendUntilFull(Self.invoke(fnID, String(repeating: "x", count: 256 << 10)), limit: 64 << 20)
            #expect(sent > 0 && sent < 32 << 20, "the server took \(sent) bytes while the call ran")
            conn.hangUp()
            TestSignals.event(name + ".go").fire()
            let version = try await c.send("GET", "/version")
            #expect(version.status == 200 && version.json["version"] != nil, "the server goes on: \(version.text)")
        }
    }

    @Test func aLargeBodyInManyPiecesReachesTheFunctionWhole() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let body = String(repeating: "0123456789abcdef", count: 32 * 1024)
            let conn = try RawHTTPConnection(port: c.port)
            conn.sendRaw("POST /invoke/\(fnID) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            for start in stride(from: 0, to: body.utf8.count, by: 100_000) {
                conn.sendRaw(String(body.dropFirst(start).prefix(100_000)))
                try await Task.sleep(for: .milliseconds(5))
            }
            // The echo function answers "echo:" and every byte it got.
            #expect(await conn.read(until: "Content-Length: \(body.utf8.count + 5)\r\n"), "\(conn.text.prefix(300))")
            #expect(await conn.read(until: "cdef0123456789abcdef"), "the body follows")
        }
    }

    @Test func httpDatesAreIMFFixdate() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_520_000) == "Sun, 06 Dec 2026 01:20:00 GMT")
    }
}
