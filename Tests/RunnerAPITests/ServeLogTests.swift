import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The node's own log as a collector reads it: `--log-format json`, one object per line, with
/// the same keys (app_id, fn_id, container, image) on every line about a container.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct ServeLogTests {
    static func objects(_ stderr: String) -> [[String: Any]] {
        stderr.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test func aContainersStartFreezeAndThawAreLoggedAsJSONWithItsKeysAndPhases() async throws {
        try await withHelloStreamData("jsonlog") { env, data in
            let (server, c) = try await ServeHarness.start(
                env, data: data, port: try Host.freeLoopbackPort(), environment: ["FN_FREEZE_IDLE_MSECS": "0"],
                arguments: ["--log-format", "json", "--log-level", "debug"])
            defer {
                server.signal(SIGTERM)
                server.reap()
            }
            let (appID, fnID) = try await ServeHarness.deployApp(c, app: "logged", fn: "hello")
            #expect(try await c.send("POST", "/invoke/\(fnID)", body: Array("a".utf8)).status == 200)
            // Frozen at once (FN_FREEZE_IDLE_MSECS=0), then thawed by the next call.
            try await waitUntil(timeoutMillis: 30_000) {
                Self.objects(server.stderr).contains { $0["message"] as? String == "froze an idle container" }
            }
            #expect(try await c.send("POST", "/invoke/\(fnID)", body: Array("b".utf8)).status == 200)
            // The server's stderr reaches the harness through a pipe: wait for the thaw's line.
            try await waitUntil(timeoutMillis: 30_000) {
                Self.objects(server.stderr).contains { $0["message"] as? String == "thawed a container for a call" }
            }

            let lines = Self.objects(server.stderr)
            let raw = server.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }
            #expect(lines.count == raw.count && !lines.isEmpty, "every line is one JSON object")
            let started = try #require(lines.first { $0["message"] as? String == "started a container" }, "\(server.stderr)")
            #expect(started["app_id"] as? String == appID && started["fn_id"] as? String == fnID)
            #expect(started["image"] as? String == "fn-test/hello-stream:1" && started["format"] as? String == "http-stream")
            let container = try #require(started["container"] as? String)
            for phase in ["start_ms", "image_ms", "sandbox_ms", "ready_ms"] {
                #expect(Double(started[phase] as? String ?? "") != nil, "\(phase) in \(started)")
            }
            for message in ["froze an idle container", "thawed a container for a call"] {
                let line = lines.first { $0["message"] as? String == message }
                #expect(line?["container"] as? String == container && line?["fn_id"] as? String == fnID, "\(message): \(String(describing: line))")
                #expect(line?["level"] as? String == "debug")
            }
            #expect(lines.contains { $0["message"] as? String == "fnrunner serve starting" && $0["logger"] as? String == "fnrunner.serve" })
        }
    }

    @Test func withLogFunctionOutputAFunctionsStderrReachesTheNodesLogLineByLineWithItsCall() async throws {
        try await withHelloStreamData("fnoutlog") { env, data in
            try await ServeHarness.importHelloStream(tag: "sh", into: data)
            let (server, c) = try await ServeHarness.start(
                env, data: data, port: try Host.freeLoopbackPort(), environment: ["FN_LOG_FUNCTION_OUTPUT": "true"],
                arguments: ["--log-format", "json", "--log-level", "info"])
            defer {
                server.signal(SIGTERM)
                server.reap()
            }
            let script = "printf 'first line\\nsecond \"quoted\"\\nno newline' >&2; echo answer"
            let (_, fnID) = try await ServeHarness.deployApp(
                c, app: "noisy", fn: "cold", image: "fn-test/hello-stream:sh", fnFields: ["format": "default", "config": ["SCRIPT": script]])
            let answer = try await c.send("POST", "/invoke/\(fnID)")
            #expect(answer.status == 200 && answer.text == "answer\n", "\(answer.text) \(server.stderr)")
            let callID = try #require(answer.header("Fn-Call-Id"))
            func output() -> [[String: Any]] { Self.objects(server.stderr).filter { $0["message"] as? String == "function output" } }
            try await waitUntil(timeoutMillis: 30_000) { output().count >= 3 }
            #expect(output().map { $0["output"] as? String ?? "" } == ["first line", "second \"quoted\"", "no newline"], "\(server.stderr)")
            for line in output() {
                #expect(line["call_id"] as? String == callID && line["fn_id"] as? String == fnID && line["stream"] as? String == "stderr")
                #expect((line["container"] as? String)?.isEmpty == false && line["level"] as? String == "info")
            }
            // The call's own log in the store still has it all.
            let log = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(callID)/log")
            #expect(log.text.contains("first line") && log.text.contains("no newline"), "\(log.text)")
        }
    }
}
