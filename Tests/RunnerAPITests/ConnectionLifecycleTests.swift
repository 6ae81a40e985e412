import ServiceLifecycle
import TestSupport
import Testing

/// How long a client connection lives: the idle timeout and the graceful shutdown apply to
/// calls answered on the event loop and to the router's alike.
struct ConnectionLifecycleTests {
    typealias H = APIHarness

    static func chunkedInvoke(_ fnID: String, _ body: String) -> String {
        "POST /invoke/\(fnID) HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(body.utf8.count, radix: 16) + "\r\n\(body)\r\n0\r\n\r\n"
    }

    @Test func aConnectionLeftIdleAfterAnInvokeIsClosedAfterTheIdleTimeout() async throws {
        try await H.withServer(clientIdleTimeoutMillis: 300) { c, _ in
            let (_, fnID) = try await H.appAndFn(c)
            let conn = try RawHTTPConnection(port: c.port)
            conn.sendRaw(InvokeChannelTests.invoke(fnID, "one"))
            #expect(await conn.read(until: "echo:one"), "\(conn.text)")
            // Generous: a loaded machine delays the server's timer by seconds (see
            // NodeProtectionTests). Without the timeout it would never close.
            #expect(await conn.waitForClose(seconds: 30), "closed once idle")
        }
    }

    @Test func aGracefulShutdownClosesIdleConnectionsAtOnceAndBusyOnesAfterTheirAnswers() async throws {
        try await H.withServer { c, _, services in
            let (_, fnID) = try await H.appAndFn(c)
            let (onLoop, routed) = (StreamingTests.uniqueName(), StreamingTests.uniqueName())
            let idle = try RawHTTPConnection(port: c.port)
            idle.sendRaw(InvokeChannelTests.get("/version"))
            #expect(await idle.read(until: "\"version\""), "\(idle.text)")
            // A chunked body is the router's to read: one call on each path.
            let busyOnLoop = try RawHTTPConnection(port: c.port)
            busyOnLoop.sendRaw(InvokeChannelTests.invoke(fnID, "hold:\(onLoop)"))
            let busyRouted = try RawHTTPConnection(port: c.port)
            busyRouted.sendRaw(Self.chunkedInvoke(fnID, "hold:\(routed)"))
            try await StreamingTests.waitFor(TestSignals.event(onLoop + ".started"), "the call on the loop runs")
            try await StreamingTests.waitFor(TestSignals.event(routed + ".started"), "the router's call runs")

            await services.triggerGracefulShutdown()
            #expect(await idle.waitForClose(seconds: 30), "the idle connection is closed at once")
            #expect(await !busyOnLoop.waitForClose(seconds: 1), "a connection owed an answer stays open")
            #expect(await !busyRouted.waitForClose(seconds: 1), "a connection owed an answer stays open")

            TestSignals.event(onLoop + ".go").fire()
            TestSignals.event(routed + ".go").fire()
            for conn in [busyOnLoop, busyRouted] {
                #expect(await conn.read(until: "held"), "the answer is written: \(conn.text)")
                #expect(conn.text.hasPrefix("HTTP/1.1 200 OK"), "\(conn.text)")
                #expect(await conn.waitForClose(seconds: 30), "and then the connection closes")
            }
        }
    }
}
