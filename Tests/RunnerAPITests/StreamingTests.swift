import Foundation
import Runner
import RunnerOS
import TestSupport
import Testing

/// Answers that stream to the client as the function writes them, and clients that hang up,
/// on a live server with the stub driver (the real runtime's cases are in ServeCommandTests).
struct StreamingTests {
    typealias H = APIHarness

    static func uniqueName() -> String { "e\(UInt32.random(in: 0...UInt32.max))" }

    /// Waits until `event` fired (the echo function says it started).
    static func waitFor(_ event: AsyncEvent, _ what: String) async throws {
        for _ in 0..<3000 where !event.hasFired { try await Task.sleep(for: .milliseconds(10)) }
        #expect(event.hasFired, "\(what)")
    }

    /// The fn's calls, newest first, once the newest has ended.
    static func endedCalls(_ c: HTTPTestClient, fnID: String, count: Int) async throws -> [[String: Any]] {
        for _ in 0..<3000 {
            let items = (try await c.send("GET", "/v2/fns/\(fnID)/calls").json["items"] as? [[String: Any]]) ?? []
            let ended = items.filter { !["queued", "running"].contains($0["status"] as? String ?? "") }
            if ended.count >= count { return items }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("\(count) calls did not end")
        return []
    }

    @Test func theAnswerReachesTheClientBeforeTheFunctionFinishes() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let name = Self.uniqueName()
            let conn = try RawHTTPConnection(port: c.port)
            conn.send("POST", "/invoke/\(fnID)", body: "stream:\(name)")
            #expect(await conn.read(until: "first\n"), "\(conn.text)")
            #expect(!conn.text.contains("second"), "the function has not written it yet: it waits for the test")
            #expect(conn.text.hasPrefix("HTTP/1.1 200"))
            let head = conn.text.lowercased()
            #expect(head.contains("x-fn: echo") && head.contains("fn-call-id: ") && head.contains("transfer-encoding: chunked"), "\(conn.text)")
            TestSignals.event(name + ".go").fire()
            #expect(await conn.read(until: "\r\n0\r\n\r\n"), "\(conn.text)")
            #expect(conn.text.contains("second\n"))
            let calls = try await Self.endedCalls(c, fnID: fnID, count: 1)
            #expect(calls.first?["status"] as? String == "success")
        }
    }

    @Test func aClientThatHangsUpCancelsItsRunningCall() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let name = Self.uniqueName()
            let conn = try RawHTTPConnection(port: c.port)
            conn.send("POST", "/invoke/\(fnID)", body: "hold:\(name)")
            try await Self.waitFor(TestSignals.event(name + ".started"), "the call runs")
            conn.hangUp()
            let calls = try await Self.endedCalls(c, fnID: fnID, count: 1)
            #expect(calls.first?["status"] as? String == "cancelled" && calls.first?["error"] as? String == "client cancelled", "\(calls)")
            // The next call gets a fresh container and an answer.
            let after = try await c.send("POST", "/invoke/\(fnID)", body: Array("after".utf8))
            #expect(after.status == 200 && after.text == "echo:after")
        }
    }

    @Test func aClientThatHangsUpWhileItsCallWaitsEndsTheWaitAtOnce() async throws {
        try await H.withServer(totalMemoryMB: 128) { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            let other = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "other", "image": "fn-test/echo:1"])
            let otherID = try #require(other.json["id"] as? String)
            let name = Self.uniqueName()
            async let holding = c.send("POST", "/invoke/\(fnID)", body: Array("hold:\(name)".utf8))
            try await Self.waitFor(TestSignals.event(name + ".started"), "the first call holds all the memory")
            let conn = try RawHTTPConnection(port: c.port)
            conn.send("POST", "/invoke/\(otherID)", body: "waits")
            // Hang up once the call waits for memory: earlier, the server might not have read it.
            try await c.waitForContainers("wait", count: 1)
            conn.hangUp()
            let calls = try await Self.endedCalls(c, fnID: otherID, count: 1)
            #expect(calls.first?["status"] as? String == "cancelled", "cancelled long before its 30 s wait limit: \(calls)")
            TestSignals.event(name + ".go").fire()
            let held = try await holding
            #expect(held.status == 200 && held.text == "held", "the call that held the memory is untouched")
        }
    }
}
