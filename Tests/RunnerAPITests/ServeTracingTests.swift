import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// OpenTelemetry traces of `fnrunner serve`, received by scripts/otlp-receiver (a small
/// OTLP/HTTP receiver on loopback) as a collector would receive them.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"), .serialized)
struct ServeTracingTests {
    @Test(arguments: ["http/json", "http/protobuf"])
    func aColdAndAHotCallAreSpanTreesOfTheirPhasesUnderTheCallersTrace(_ proto: String) async throws {
        try await withHelloStreamData("trace") { env, data in
            let receiver = try await OTLPReceiver(env)
            let endpoint = receiver.endpoint
            let (server, c) = try await ServeHarness.start(
                env, data: data, port: try Host.freeLoopbackPort(),
                environment: [
                    "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": proto, "OTEL_BSP_SCHEDULE_DELAY": "50",
                    "OTEL_SERVICE_NAME": "runner-under-test",
                ])
            let fnID = try await ServeHarness.deploy(c, app: "traced", fn: "hello", memory: 64)
            let callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
            let callerSpan = "00f067aa0ba902b7"
            let cold = try await c.send(
                "POST", "/invoke/\(fnID)", body: Array("!headers".utf8), headers: [("traceparent", "00-\(callerTrace)-\(callerSpan)-01")])
            #expect(cold.status == 200, "\(cold.text)")
            let coldID = try #require(cold.header("Fn-Call-Id"))
            // Idle past the freeze delay (50 ms), so the next call thaws: its freeze span has been
            // exported (a fixed wait would race a loaded machine's freeze).
            try await waitUntil(timeoutMillis: 30_000) { receiver.spans.contains { $0.name == "freeze" } }
            let hot = try await c.send("POST", "/invoke/\(fnID)", body: Array("hot".utf8))
            #expect(hot.status == 200)
            let hotID = try #require(hot.header("Fn-Call-Id"))
            try await waitUntil(timeoutMillis: 30_000) { receiver.spans.filter { $0.name == "freeze" }.count == 2 }  // and is frozen again
            await ServeHarness.stop(server, env)  // the exporter flushes on the way out

            let spans = receiver.spans
            func call(_ id: String) throws -> OTLPReceiver.Span {
                try #require(receiver.call(id), "\(spans.map(\.name))")
            }
            // The cold call: in the caller's trace, under the API request's span, which is the caller's child.
            let coldCall = try call(coldID)
            #expect(coldCall.traceID == callerTrace && coldCall.service == "runner-under-test")
            let request = try #require(spans.first { $0.spanID == coldCall.parentID }, "the request's span")
            #expect(request.parentID == callerSpan && request.intAttributes["http.response.status_code"] == 200)
            #expect(coldCall.attributes["fn.fn.id"] == fnID && coldCall.attributes["fn.call.status"] == "success")
            // The freeze that followed belongs to it too, after its end.
            let phases = OTLPReceiver.children(of: coldCall, in: spans).filter { $0.name != "freeze" }
            #expect(phases.map(\.name) == ["queue wait", "container start", "function"], "\(phases.map(\.name))")
            let freeze = try #require(OTLPReceiver.children(of: coldCall, in: spans).first { $0.name == "freeze" })
            #expect(freeze.start >= coldCall.end)
            let start = try #require(phases.first { $0.name == "container start" })
            let inside = OTLPReceiver.children(of: start, in: spans).map(\.name)
            #expect(inside.first == "image" && inside.last == "listener ready" && inside.contains("clone") && inside.contains("exec"), "\(inside)")
            #expect(inside.contains("pool claim") || inside.contains("cgroup create"), "\(inside)")
            for p in phases + OTLPReceiver.children(of: start, in: spans) {
                #expect(p.start >= coldCall.start && p.end <= coldCall.end && p.start <= p.end, "\(p.name) lies within the call")
            }
            // The function was given the `function` span as its parent, so its own spans join the trace.
            let function = try #require(phases.first { $0.name == "function" })
            #expect(cold.text.lowercased().contains("traceparent: 00-\(callerTrace)-\(function.spanID)-01"), "\(cold.text)")
            #expect(!cold.text.contains(callerSpan), "the caller's own span id is replaced, not passed on beside")

            // The hot call: its own trace (no traceparent), a thaw instead of a start, and a freeze after.
            let hotCall = try call(hotID)
            #expect(hotCall.traceID != callerTrace)
            let hotPhases = OTLPReceiver.children(of: hotCall, in: spans).map(\.name)
            #expect(hotPhases == ["queue wait", "thaw", "function", "freeze"], "\(hotPhases) \(server.stderr)")
        }
    }

    @Test func aFailedCallsSpanIsAnErrorAndCallsOfAnUntracedNodeExportNothing() async throws {
        try await withHelloStreamData("trace-off") { env, data in
            let receiver = try await OTLPReceiver(env)
            let endpoint = receiver.endpoint
            // OTEL_TRACES_EXPORTER=none wins over an endpoint: nothing is sent.
            var (server, c) = try await ServeHarness.start(
                env, data: data, port: try Host.freeLoopbackPort(),
                environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_EXPORTER": "none", "OTEL_BSP_SCHEDULE_DELAY": "50"])
            var fnID = try await ServeHarness.deploy(c, app: "untraced", fn: "hello", memory: 64)
            #expect(try await c.send("POST", "/invoke/\(fnID)", body: Array("!headers".utf8)).text.lowercased().contains("traceparent") == false)
            await ServeHarness.stop(server, env)
            #expect(receiver.spans.isEmpty)

            (server, c) = try await ServeHarness.start(
                env, data: data, port: try Host.freeLoopbackPort(),
                environment: ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint + "/v1/traces", "OTEL_BSP_SCHEDULE_DELAY": "50"])
            fnID = try await ServeHarness.deploy(c, app: "traced", fn: "failing", memory: 64)
            let failed = try await c.send("POST", "/invoke/\(fnID)", body: Array("!crash".utf8))
            #expect(failed.status == 502)
            let id = try #require(failed.header("Fn-Call-Id"))
            // A detached call is traced once, when it runs from the queue: in its caller's trace.
            let callerTrace = "5bf92f3577b34da6a3ce929d0e0e4737"
            let detached = try await c.send(
                "POST", "/invoke/\(fnID)", body: Array("later".utf8),
                headers: [("Fn-Invoke-Type", "detached"), ("traceparent", "00-\(callerTrace)-10f067aa0ba902b7-01")])
            #expect(detached.status == 202)
            let detachedID = try #require(detached.header("Fn-Call-Id"))
            try await pollUntil {
                try await c.send("GET", "/v2/fns/\(fnID)/calls/\(detachedID)").json["status"] as? String == "success"
            }
            await ServeHarness.stop(server, env)
            let span = try #require(receiver.call(id))
            #expect(span.error && span.attributes["fn.call.status"] == "error")
            let runs = receiver.spans.filter { $0.name == "fn call" && $0.attributes["fn.call.id"] == detachedID }
            #expect(runs.count == 1 && runs.first?.traceID == callerTrace, "\(runs)")
        }
    }

    @Test func tracingSettingsThisBuildCannotHonourStopServeNamingThem() async throws {
        try await withHelloStreamData("trace-bad") { env, data in
            for (name, value, expected) in [
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json"),
                ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER must be otlp or none, not \"zipkin\""),
                ("OTEL_TRACES_EXPORTER", "console", "OTEL_TRACES_EXPORTER=console is not available in this build"),
                // Values swift-otel would stop the process on, in the middle of a start.
                ("OTEL_PROPAGATORS", "tracecontext,baggage", "OTEL_PROPAGATORS: this build propagates tracecontext (W3C traceparent) only, or none; not \"baggage\""),
                ("OTEL_TRACES_SAMPLER", "xray", "OTEL_TRACES_SAMPLER must be one of always_on"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318", "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL"),
                ("OTEL_SDK_DISABLED", "maybe", "OTEL_SDK_DISABLED must be true or false"),
            ] {
                let server = try Subprocess.fnrunner(
                    ["serve", "--listen", "127.0.0.1:\(try Host.freeLoopbackPort())", "--data-dir", data, "--state-dir", env.stateDirectory,
                     "--cgroup-root", env.cgroupRoot], environment: [name: value])
                #expect(await server.exit() != 0)
                #expect(server.stderr.contains(expected), "\(server.stderr)")
            }
            #expect(env.cgroupDirectories().isEmpty, "nothing was made")
        }
    }
}
