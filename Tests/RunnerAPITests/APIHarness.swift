import Hummingbird
import Logging
import NodeServices
import Runner
import RunnerAPI
import RunnerOS
import RunnerStore
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A stub container driver for API tests: a hot function that echoes, and says what the test
/// asks through its body (`status:N`, `sleep:MS`, `stream:NAME`, `flood:N`, `hold:NAME`, `headers`, `rawheaders`,
/// `stub`).
final class EchoDriver: ContainerDriver {
    func startHot(_ task: ContainerTask) async throws(RunnerError) -> any HotContainerHandle { EchoContainer(name: task.name) }

    func runCold(_ task: ContainerTask, request: FunctionRequest, log: CallLog) async throws(RunnerError) -> ColdResult {
        ColdResult(exitCode: 0, stdout: request.body)
    }
}

final class EchoContainer: HotContainerHandle {
    let name: String
    init(name: String) { self.name = name }

    /// No process: it never ends on its own.
    func onExit(_ action: @escaping @Sendable () -> Void) {}

    func call(_ request: FunctionRequest, timeout: Duration, maxBodyBytes: Int, log: CallLog, stream: ResponseStream?)
        async throws(RunnerError) -> FunctionResponse
    {
        let body = String(decoding: request.body, as: UTF8.self)
        log.write("called with \(request.body.count) bytes\n")
        if body.hasPrefix("status:"), let n = Int(body.dropFirst(7)) { return FunctionResponse(status: n, headers: [], body: []) }
        if body.hasPrefix("stream:") {
            // Streams "first", then waits for the test's go before "second": an answer that
            // reached the client before the function finished.
            let go = TestSignals.event(String(body.dropFirst(7)) + ".go")
            guard let stream else {
                await go.waitIgnoringCancellation()
                return FunctionResponse(status: 200, headers: [], body: Array("first\nsecond\n".utf8))
            }
            try await stream.begin(FunctionResponse(status: 200, headers: [HTTPHeader(name: "x-fn", value: "echo")], body: Array("first\n".utf8)))
            if await go.wait() == nil { throw CallErrors.cancelled("call function") }
            try await stream.write(Array("second\n".utf8)[...], deadlineNanos: MonotonicClock.nowNanos() + 1_000_000_000)
            var r = FunctionResponse(status: 200, headers: [HTTPHeader(name: "x-fn", value: "echo")], body: [])
            r.streamed = true
            return r
        }
        if body.hasPrefix("quiet:"), let stream {
            // A head with no body yet, then a wait for the test's go: the client must have the
            // head before any of the body exists.
            let go = TestSignals.event(String(body.dropFirst(6)) + ".go")
            try await stream.begin(FunctionResponse(status: 200, headers: [HTTPHeader(name: "x-fn", value: "quiet")], body: []))
            if await go.wait() == nil { throw CallErrors.cancelled("call function") }
            try await stream.write(Array("late\n".utf8)[...], deadlineNanos: MonotonicClock.nowNanos() + 1_000_000_000)
            var r = FunctionResponse(status: 200, headers: [HTTPHeader(name: "x-fn", value: "quiet")], body: [])
            r.streamed = true
            return r
        }
        if body.hasPrefix("flood:"), let n = Int(body.dropFirst(6)), let stream {
            // Streams n chunks of 64 KiB, each to be taken within a second.
            try await stream.begin(FunctionResponse(status: 200, headers: [], body: []))
            let chunk = [UInt8](repeating: UInt8(ascii: "f"), count: 64 << 10)
            for _ in 0..<n { try await stream.write(chunk[...], deadlineNanos: MonotonicClock.nowNanos() + 1_000_000_000) }
            var r = FunctionResponse(status: 200, headers: [], body: [])
            r.streamed = true
            return r
        }
        if body.hasPrefix("hold:") {
            // Says it started, then runs until the test's go, or until cancelled.
            let name = String(body.dropFirst(5))
            TestSignals.event(name + ".started").fire()
            if await TestSignals.event(name + ".go").wait() == nil { throw CallErrors.cancelled("call function") }
            return FunctionResponse(status: 200, headers: [], body: Array("held".utf8))
        }
        if body.hasPrefix("sleep:"), let ms = Int(body.dropFirst(6)) {
            try? await Task.sleep(for: .milliseconds(ms))
            return FunctionResponse(status: 200, headers: [], body: Array("slept".utf8))
        }
        if body == "stub" {
            return FunctionResponse(
                status: 200,
                headers: [
                    HTTPHeader(name: "fn-http-status", value: "201"), HTTPHeader(name: "fn-http-h-x-stub", value: "yes"),
                    HTTPHeader(name: "x-raw", value: "raw"), HTTPHeader(name: "content-type", value: "text/x-stub"),
                ], body: Array("stubbed".utf8))
        }
        if body == "rawheaders" {
            // The headers a function gets, names exactly as passed, one per line.
            let text = request.passedHeaders.map { "\($0.0)=\($0.1)" }.sorted().joined(separator: "\n")
            return FunctionResponse(status: 200, headers: [], body: Array(text.utf8))
        }
        if body == "headers" {
            // Answers with the headers a function gets, one per line.
            let text = request.passedHeaders.map { "\($0.0.lowercased())=\($0.1)" }.sorted().joined(separator: "\n")
            return FunctionResponse(status: 200, headers: [HTTPHeader(name: "x-fn", value: "echo")], body: Array(text.utf8))
        }
        return FunctionResponse(
            status: 200, headers: [HTTPHeader(name: "x-fn", value: "echo"), HTTPHeader(name: "keep-alive", value: "timeout=5")],
            body: Array("echo:\(body)".utf8))
    }

    func freeze() throws(RunnerError) {}
    func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool { false }
    func stats() -> ContainerCounters? { ContainerCounters(cpuUsageNanos: 1000) }
    func close() async {}
}

/// A live `FnAPI` server on an ephemeral loopback port, with its store in a scratch dir.
enum APIHarness {
    static func withServer(
        maxRequestBytes: Int = 1 << 20, totalMemoryMB: UInt64 = 1024, detached: Bool = true, clientIdleTimeoutMillis: Int? = nil,
        publicURL: String? = "http://fn.test", _ body: (HTTPTestClient, Store) async throws -> Void
    ) async throws {
        try await withServer(
            maxRequestBytes: maxRequestBytes, totalMemoryMB: totalMemoryMB, detached: detached,
            clientIdleTimeoutMillis: clientIdleTimeoutMillis, publicURL: publicURL
        ) { client, store, _ in try await body(client, store) }
    }

    /// The same server, run in a service group the test can shut down gracefully (as SIGTERM
    /// does to serve).
    static func withServer(
        maxRequestBytes: Int = 1 << 20, totalMemoryMB: UInt64 = 1024, detached: Bool = true, clientIdleTimeoutMillis: Int? = nil,
        publicURL: String? = "http://fn.test", _ body: (HTTPTestClient, Store, ServiceGroup) async throws -> Void
    ) async throws {
        let dir = "/tmp/fnrunner-api-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(dir, mode: 0o700)
        defer { try? FileSystem.removeTree(dir) }
        let store = try Store(path: dir + "/fnrunner.db")
        var agentConfig = AgentConfiguration()
        agentConfig.shutdownGraceMillis = 1000
        let agent = Agent(
            configuration: agentConfig, driver: EchoDriver(),
            tracker: ResourceTracker(totalMemoryBytes: totalMemoryMB << 20, totalCPUMillicores: 2000))
        let recorder = StoreRecorder(store: store, logger: .init(label: "test"))
        agent.addListener(recorder)
        var config = FnAPI.Configuration()
        config.maxRequestBytes = maxRequestBytes
        if let clientIdleTimeoutMillis { config.clientIdleTimeoutMillis = clientIdleTimeoutMillis }
        config.publicURL = publicURL
        let consumer = detached ? AsyncCallConsumer(configuration: .init(), agent: agent, queue: store) : nil
        if let consumer { agent.addListener(consumer) }
        let api = FnAPI(configuration: config, store: store, agent: agent, recorder: recorder, detachedCalls: consumer)
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: api.router(), server: api.server, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            services: [AgentService(agent: agent, detachedCalls: consumer), RecordWriter(recorder: recorder)],
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } })
        let services = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var bound: Int?
            for _ in 0..<5000 {
                bound = port.withLock { $0 }
                if bound != nil { break }
                try await Task.sleep(for: .milliseconds(1))
            }
            let client = HTTPTestClient(port: try #require(bound))
            do {
                try await body(client, store, services)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }

    /// Creates an app and a fn through the API; returns their ids.
    static func appAndFn(_ c: HTTPTestClient, app: String = "myapp", fn: String = "hello", extra: [String: Any] = [:]) async throws -> (String, String) {
        let a = try await c.json("POST", "/v2/apps", ["name": app])
        #expect(a.status == 200, "\(a.text)")
        let appID = try #require(a.json["id"] as? String)
        var body: [String: Any] = ["app_id": appID, "name": fn, "image": "fn-test/echo:1"]
        for (k, v) in extra { body[k] = v }
        let f = try await c.json("POST", "/v2/fns", body)
        #expect(f.status == 200, "\(f.text)")
        return (appID, try #require(f.json["id"] as? String))
    }
}
