import OCIImage
import Runner
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The seed's formats on the real runtime, with busybox shell functions: `default` (cold),
/// `json` and `http` (hot over stdin/stdout); and the agent's logs and stats from real containers.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct AgentFormatsTests {
    func function(_ format: String, _ script: String, memoryMB: UInt64 = 64, timeout: Int = 10) -> FunctionDefinition {
        FunctionDefinition(
            appID: "app1", appName: "myapp", fnID: "fn-\(format)", fnName: "shell", image: "fn-test/hello-stream:sh", format: format,
            memoryMB: memoryMB, timeoutSeconds: timeout, fnConfig: ["SCRIPT": script])
    }

    func request(_ body: String, headers: [(String, String)] = []) -> FunctionRequest {
        FunctionRequest(method: "PUT", url: "http://example.test/t/app/route?q=1", contentType: "text/plain", headers: headers, body: Array(body.utf8))
    }

    func withAgent(maxResponseBytes: Int = 0, _ body: (Agent, Sandbox) async throws -> Void) async throws {
        let layout = try await ImageFixtures.helloStreamLayout()
        try await RunnerHarness.withAgent(
            "formats", images: [(layout, "fn-test/hello-stream:sh"), (layout, "fn-test/hello-stream:1"), (layout, "fn-test/hello-stream:never")],
            configure: {
                $0.maxResponseBytes = maxResponseBytes
                $0.hotStartTimeoutMillis = 500
            }, body)
    }

    @Test func aColdFunctionReadsStdinAndTheRequestFromItsEnvironmentAndAnswersOnStdout() async throws {
        try await withAgent { agent, sandbox in
            let script = #"cat; echo; echo "m=$FN_METHOD u=$FN_REQUEST_URL"; tr '\0' '\n' </proc/1/environ | grep '^FN_HEADER_X-Greeting='; echo to-stderr >&2"#
            let call = try agent.makeCall(function("default", script), request("input", headers: [("X-Greeting", "hi")]))
            let r = try await agent.submit(call)
            #expect(RunnerHarness.text(r) == "input\nm=PUT u=http://example.test/t/app/route?q=1\nFN_HEADER_X-Greeting=hi\n")
            #expect(call.log.text == "to-stderr\n")
            #expect(call.record.status == .success && (call.record.stats?.cpuNanos ?? 0) > 0)
            #expect(sandbox.liveContainers.isEmpty, "a cold container ends with its call")
        }
    }

    @Test func aColdFunctionsExitCodeTimeoutAndOOMAreFnsErrors() async throws {
        try await withAgent { agent, sandbox in
            let exit = await RunnerHarness.failure(agent, function("default", "exit 3"), request(""))
            #expect(exit?.code == .containerExit && exit?.message == "container exit code 3")
            let late = await RunnerHarness.failure(agent, function("default", "sleep 5", timeout: 1), request(""))
            #expect(late?.code == .callTimeout)
            let oom = await RunnerHarness.failure(agent, function("default", "probe alloc 64", memoryMB: 16), request(""))
            #expect(oom?.code == .outOfMemory, "\(String(describing: oom))")
            #expect(sandbox.liveContainers.isEmpty)
        }
    }

    @Test func aColdFunctionsOutputIsBoundedByTheResponseLimit() async throws {
        try await withAgent(maxResponseBytes: 100) { agent, _ in
            let big = await RunnerHarness.failure(agent, function("default", "head -c 5000 /dev/zero"), request(""))
            #expect(big?.code == .responseTooBig)
            let small = try await agent.submit(function("default", "head -c 100 /dev/zero | tr '\\0' x"), request(""))
            #expect(small.body.count == 100)
        }
    }

    static let jsonEcho = #"""
        while read -r line; do
          n=$(printf '%s' "$line" | wc -c)
          echo "log line" >&2
          printf '{"body":"got %s bytes from %s","content_type":"text/x-shell","protocol":{"status_code":201,"headers":{"X-Fn":["json"]}}}\n' "$n" "$$"
        done
        """#

    @Test func aHotJSONFunctionServesCallsOnOneContainerWithItsOwnStatusAndHeaders() async throws {
        try await withAgent { agent, sandbox in
            let f = function("json", Self.jsonEcho)
            let call = try agent.makeCall(f, request("one"))
            let r1 = try await agent.submit(call)
            let r2 = try await agent.submit(f, request("two"))
            #expect(r1.status == 201 && r1.header("x-fn") == "json" && r1.header("content-type") == "text/x-shell")
            let pid1 = RunnerHarness.text(r1).split(separator: " ").last
            #expect(pid1 != nil && pid1 == RunnerHarness.text(r2).split(separator: " ").last, "both calls on one container")
            #expect(call.log.text == "log line\n")
            #expect(sandbox.liveContainers.count == 1)
        }
    }

    @Test func aJSONFunctionThatSaysTooMuchSucceedsButEndsItsContainerAndInvalidJSONIs502() async throws {
        try await withAgent { agent, sandbox in
            let excess = function("json", #"while read -r line; do echo '{"body":"a"}{"body":"b"}'; done"#)
            #expect(RunnerHarness.text(try await agent.submit(excess, request("1"))) == "a")
            // Ended after the answer, by the container's own task: polled, not a fixed sleep.
            for _ in 0..<500 where !sandbox.liveContainers.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            #expect(sandbox.liveContainers.isEmpty, "excess output ends the container")
            #expect(RunnerHarness.text(try await agent.submit(excess, request("2"))) == "a", "the next call gets a new container")

            let invalid = await RunnerHarness.failure(agent, function("json", "while read -r line; do echo 'no json here'; done"), request("x"))
            #expect(invalid?.code == .functionInvalidResponse && invalid?.message.hasPrefix("invalid json response from function err:") == true)
        }
    }

    static let httpEcho = #"""
        while read -r line; do
          len=0; method=""
          while read -r h; do
            h=$(printf '%s' "$h" | tr -d '\r')
            [ -z "$h" ] && break
            case "$h" in
              Content-Length:*) len=${h#*: } ;;
              Fn_method:*) method=${h#*: } ;;
            esac
          done
          body=$(head -c "$len")
          resp="hello $body via $method from $$"
          printf 'HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\nX-Fn: http\r\n\r\n%s' "${#resp}" "$resp"
        done
        """#

    @Test func aHotHTTPFunctionGetsTheRequestOnStdinAndAnswersOnStdout() async throws {
        try await withAgent { agent, sandbox in
            let f = function("http", Self.httpEcho)
            let r1 = try await agent.submit(f, request("world"))
            #expect(r1.status == 202 && r1.header("x-fn") == "http")
            #expect(RunnerHarness.text(r1).hasPrefix("hello world via PUT from "))
            let r2 = try await agent.submit(f, request("again"))
            #expect(RunnerHarness.text(r2).hasPrefix("hello again via PUT from "))
            #expect(RunnerHarness.text(r1).split(separator: " ").last == RunnerHarness.text(r2).split(separator: " ").last)
            #expect(sandbox.liveContainers.count == 1)

            let garbage = await RunnerHarness.failure(agent, function("http", "while read -r l; do echo garbage; echo; echo; done"), request("x"))
            #expect(garbage?.code == .functionInvalidResponse && garbage?.message.hasPrefix("invalid http response from function err:") == true)
        }
    }

    @Test func aFunctionThatNeverListensTimesOutItsInitWith504() async throws {
        try await withAgent { agent, sandbox in
            var f = function("http-stream", "")
            f.image = "fn-test/hello-stream:never"
            let error = await RunnerHarness.failure(agent, f, request("x"))
            #expect(error?.code == .containerInitTimeout)
            #expect(error?.message == "Container initialization timed out, please ensure you are using the latest fdk and check the logs")
            #expect(sandbox.liveContainers.isEmpty)
        }
    }

    @Test func aHotCallsStderrIsItsLogAndItsStatsComeFromTheCgroup() async throws {
        try await withAgent { agent, _ in
            var f = function("http-stream", "")
            f.image = "fn-test/hello-stream:1"
            let call = try agent.makeCall(f, request("!stderr from the function"))
            _ = try await agent.submit(call)
            await eventually("the log arrived") { call.log.text.contains("from the function") }
            let stats = try #require(call.record.stats)
            #expect(stats.cpuNanos > 0 && (stats.memoryPeakBytes ?? 0) > 0 && !stats.reusedContainer)
            let second = try agent.makeCall(f, request("quiet"))
            _ = try await agent.submit(second)
            #expect(second.record.stats?.reusedContainer == true && second.log.text.isEmpty)
        }
    }
}
