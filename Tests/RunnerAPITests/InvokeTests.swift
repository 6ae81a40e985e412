import Foundation
import Runner
import RunnerOS
import RunnerStore
import TestSupport
import Testing

/// Invoke and HTTP triggers on a live server (stub driver), and the call records they leave.
struct InvokeTests {
    typealias H = APIHarness

    @Test func invokeAnswersWithTheFunctionsBodyAndHeadersAndACallID() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let r = try await c.send("POST", "/invoke/\(fnID)", body: Array("hi".utf8), headers: [("Content-Type", "text/plain")])
            #expect(r.status == 200 && r.text.hasSuffix(":hi"))
            #expect(r.header("X-Fn") == "echo")
            #expect(r.header("Keep-Alive") == nil, "hop-by-hop headers of the function are dropped")
            #expect(r.header("Fn-Call-Id")?.count == 26)
            let seen = try await c.send("POST", "/invoke/\(fnID)", body: Array("headers".utf8), headers: [("Content-Type", "text/plain"), ("X-One", "1")])
            let lines = seen.text.split(separator: "\n").map(String.init)
            #expect(lines.contains("x-one=1") && !lines.contains { $0.hasPrefix("content-type=") }, "\(lines)")
        }
    }

    @Test func invokeRefusesOtherMethodsUnknownFnsAndBigBodies() async throws {
        try await H.withServer(maxRequestBytes: 1000) { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let get = try await c.send("GET", "/invoke/\(fnID)")
            #expect(get.status == 405 && get.message == "Method not allowed: GET /invoke/\(fnID)")
            let unknown = try await c.send("POST", "/invoke/01NOPE")
            #expect(unknown.status == 404 && unknown.message == "Fn not found")
            let big = try await c.send("POST", "/invoke/\(fnID)", body: [UInt8](repeating: 0x61, count: 5000))
            #expect(big.status == 413 && big.message == "Request content too large")
            let detachedTooBig = try await c.send(
                "POST", "/invoke/\(fnID)", body: [UInt8](repeating: 0x61, count: 5000), headers: [("Fn-Invoke-Type", "detached")])
            #expect(detachedTooBig.status == 413)
        }
    }

    @Test func aDetachedCallIsAcceptedWith202AndItsRecordAndLogTellHowItWent() async throws {
        try await H.withServer { c, store in
            let (appID, fnID) = try await H.appAndFn(c)
            let r = try await c.send("POST", "/invoke/\(fnID)", body: Array("later".utf8), headers: [("Fn-Invoke-Type", "detached")])
            #expect(r.status == 202, "\(r.text)")
            let id = try #require(r.json["call_id"] as? String)
            #expect(r.header("Fn-Call-Id") == id)
            let record = try await Self.waitForEnd(c, fnID: fnID, callID: id)
            #expect(record["status"] as? String == "success" && record["type"] as? String == "detached", "\(record)")
            let log = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(id)/log")
            #expect(log.text.contains("HTTP/1.1 200") && log.text.contains("echo:later"), "the answer nobody waited for is in the log: \(log.text)")
            #expect(try await store.queuedCount() == 0)

            // Through a trigger too; a function error is the call's recorded error.
            _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t", "type": "http", "source": "/later"])
            let t = try await c.send("POST", "/t/myapp/later", body: Array("status:502".utf8), headers: [("Fn-Invoke-Type", "detached")])
            #expect(t.status == 202)
            let failed = try await Self.waitForEnd(c, fnID: fnID, callID: try #require(t.json["call_id"] as? String))
            #expect(failed["status"] as? String == "error" && failed["error"] as? String == "function failed", "\(failed)")
        }
    }

    @Test func detachedCallsAreRefusedWhereNoQueueTakesThemAndWhenTheyCanNeverFit() async throws {
        try await H.withServer(totalMemoryMB: 512, detached: false) { c, store in
            let (appID, fnID) = try await H.appAndFn(c)
            let r = try await c.send("POST", "/invoke/\(fnID)", headers: [("Fn-Invoke-Type", "detached")])
            #expect(r.status == 501 && r.message == "Detach call functions are not supported on this server")
            _ = appID
            #expect(try await store.queuedCount() == 0)
        }
        try await H.withServer(totalMemoryMB: 512) { c, store in
            let (appID, _) = try await H.appAndFn(c)
            let huge = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "huge", "image": "i", "memory": 4096])
            let hugeID = try #require(huge.json["id"] as? String)
            let r = try await c.send("POST", "/invoke/\(hugeID)", headers: [("Fn-Invoke-Type", "detached")])
            #expect(r.status == 400 && r.message == "Requested CPU/Memory cannot be allocated", "refused before it is queued")
            #expect(try await store.queuedCount() == 0)
        }
    }

    /// Polls a call's record until it has ended.
    static func waitForEnd(_ c: HTTPTestClient, fnID: String, callID: String) async throws -> [String: Any] {
        for _ in 0..<1000 {
            let r = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(callID)")
            if r.status == 200, let status = r.json["status"] as? String, !["queued", "running"].contains(status) { return r.json }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("call \(callID) did not end")
        return [:]
    }

    @Test func functionErrorsBecomeFnsStatusesWithTheCallID() async throws {
        try await H.withServer(totalMemoryMB: 512) { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            let failed = try await c.send("POST", "/invoke/\(fnID)", body: Array("status:502".utf8))
            #expect(failed.status == 502 && failed.message == "function failed" && failed.header("Fn-Call-Id") != nil)
            let timedOut = try await c.send("POST", "/invoke/\(fnID)", body: Array("status:504".utf8))
            #expect(timedOut.status == 504 && timedOut.message == "Timed out")
            let huge = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "huge", "image": "i", "memory": 4096])
            let hugeID = try #require(huge.json["id"] as? String)
            let tooBig = try await c.send("POST", "/invoke/\(hugeID)")
            #expect(tooBig.status == 400 && tooBig.message == "Requested CPU/Memory cannot be allocated")
        }
    }

    @Test func triggersTranslateHeadersBothWays() async throws {
        try await H.withServer { c, _ in
            let (appID, fnID) = try await H.appAndFn(c)
            _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fnID, "name": "t", "type": "http", "source": "/greet/deep"])
            let seen = try await c.send(
                "PUT", "/t/myapp/greet/deep?x=1", body: Array("headers".utf8), headers: [("X-Custom", "v"), ("Content-Type", "text/plain")])
            #expect(seen.status == 200)
            let lines = Set(seen.text.split(separator: "\n").map(String.init))
            #expect(lines.contains("fn-http-h-x-custom=v"))
            #expect(lines.contains("fn-http-method=PUT"))
            #expect(lines.contains("fn-http-request-url=http://fn.test/t/myapp/greet/deep?x=1"))
            #expect(lines.contains("fn-intent=httprequest"))
            #expect(!lines.contains { $0.hasPrefix("fn-http-h-content-type") }, "Content-Type is passed as itself")
            #expect(seen.header("X-Fn") == nil, "a trigger drops the function's other headers")

            let stub = try await c.send("POST", "/t/myapp/greet/deep", body: Array("stub".utf8))
            #expect(stub.status == 201 && stub.header("X-Stub") == "yes" && stub.header("X-Raw") == nil)
            #expect(stub.header("Content-Type") == "text/x-stub" && stub.text == "stubbed")
            #expect(try await c.send("GET", "/t/myapp/nothing").status == 404)
            #expect(try await c.send("GET", "/t/noapp/greet/deep").status == 404)
        }
    }

    @Test func everyCallLeavesARecordAndALog() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let ok = try await c.send("POST", "/invoke/\(fnID)", body: Array("one".utf8))
            let callID = try #require(ok.header("Fn-Call-Id"))
            let failed = try await c.send("POST", "/invoke/\(fnID)", body: Array("status:502".utf8))
            let failedID = try #require(failed.header("Fn-Call-Id"))

            let record = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(callID)")
            #expect(record.status == 200 && record.json["status"] as? String == "success")
            #expect(record.json["fn_id"] as? String == fnID && record.json["completed_at"] as? String != nil)
            #expect((record.json["stats"] as? [String: Any])?["cpu_ns"] as? Int == 1000)
            let failedRecord = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(failedID)")
            #expect(failedRecord.json["status"] as? String == "error" && failedRecord.json["error"] as? String == "function failed")

            let log = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(callID)/log")
            #expect(log.status == 200 && log.text == "called with 3 bytes\n")
            let listed = try await c.send("GET", "/v2/fns/\(fnID)/calls?per_page=1")
            #expect((listed.json["items"] as? [[String: Any]])?.first?["id"] as? String == failedID, "newest first")
            #expect(listed.json["next_cursor"] as? String != nil)
            #expect(try await c.send("GET", "/v2/fns/\(fnID)/calls/01NOPE").status == 404)
        }
    }

    @Test func metricsCountCallsContainersAndTokensInPrometheusText() async throws {
        try await H.withServer { c, _ in
            let (_, fnID) = try await H.appAndFn(c, extra: ["memory": 64])
            _ = try await c.send("POST", "/invoke/\(fnID)", body: Array("one".utf8))
            _ = try await c.send("POST", "/invoke/\(fnID)", body: Array("status:502".utf8))
            let m = try await c.send("GET", "/metrics")
            #expect(m.status == 200 && m.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            let lines = Set(m.text.split(separator: "\n").map(String.init))
            #expect(lines.contains("fn_calls_total{fn_id=\"\(fnID)\",status=\"success\"} 1"), "\(m.text)")
            #expect(lines.contains("fn_calls_total{fn_id=\"\(fnID)\",status=\"error\"} 1"))
            #expect(lines.contains("fn_container_start_seconds_count 1"))
            #expect(lines.contains("fn_call_execution_seconds_count 2"))
            #expect(PrometheusText.count(of: "fn_memory_bytes{kind=\"used\"}", in: m.text) == 64 << 20, "one idle container holds its tokens")
            let idle = ["idle", "paused"].compactMap { PrometheusText.count(of: "fn_containers{state=\"\($0)\"}", in: m.text) }
            #expect(idle.reduce(0, +) == 1, "one container, idle or frozen: \(idle)")
            #expect(lines.contains("# TYPE fn_call_queue_wait_seconds histogram"))
        }
    }
}
