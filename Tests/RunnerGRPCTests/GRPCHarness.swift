import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOPosix
import Runner
import RunnerGRPC
import RunnerOS
import Synchronization
import TestSupport
import Testing

/// A stub hot function for the pure runner's tests: its request body says what to do
/// (`status:N`, `big:N` streamed, `sleep:MS`, `hold:NAME`, `len`, `where` (where the call's
/// task runs), anything else echoed).
final class StubDriver: ContainerDriver {
    func startHot(_ task: ContainerTask) async throws(RunnerError) -> any HotContainerHandle { StubContainer() }
    func runCold(_ task: ContainerTask, request: FunctionRequest, log: CallLog) async throws(RunnerError) -> ColdResult {
        if request.body == Array("where".utf8) { return ColdResult(exitCode: 0, stdout: Array(runningOn.utf8)) }
        return ColdResult(exitCode: 0, stdout: request.body)
    }
}

/// Where the calling task runs: "loop" on an event loop, "pool" elsewhere.
var runningOn: String { MultiThreadedEventLoopGroup.currentEventLoop == nil ? "pool" : "loop" }

final class StubContainer: HotContainerHandle {
    /// No process: it never ends on its own.
    func onExit(_ action: @escaping @Sendable () -> Void) {}

    func call(_ request: FunctionRequest, timeout: Duration, maxBodyBytes: Int, log: CallLog, stream: ResponseStream?)
        async throws(RunnerError) -> FunctionResponse
    {
        let body = String(decoding: request.body.prefix(64), as: UTF8.self)
        if body == "where" { return FunctionResponse(status: 200, headers: [], body: Array(runningOn.utf8)) }
        if body.hasPrefix("status:"), let n = Int(body.dropFirst(7)) { return FunctionResponse(status: n, headers: [], body: []) }
        if body.hasPrefix("len") {
            return FunctionResponse(status: 200, headers: [], body: Array("len:\(request.body.count)".utf8))
        }
        if body.hasPrefix("hold:") {
            // Says it started, then runs until the test's go, or until cancelled.
            let name = String(body.dropFirst(5))
            TestSignals.event(name + ".started").fire()
            if await TestSignals.event(name + ".go").wait() == nil { throw CallErrors.cancelled("call function") }
            return FunctionResponse(status: 200, headers: [], body: Array("held".utf8))
        }
        if body.hasPrefix("sleep:"), let ms = Int(body.dropFirst(6)) {
            do {
                try await Task.sleep(for: .milliseconds(ms))
            } catch {
                throw CallErrors.cancelled("call function")
            }
            return FunctionResponse(status: 200, headers: [], body: Array("slept".utf8))
        }
        if body.hasPrefix("big:"), let n = Int(body.dropFirst(4)) {
            let bytes = [UInt8](repeating: 0x78, count: n)
            guard let stream else { return FunctionResponse(status: 200, headers: [], body: bytes) }
            try await stream.begin(FunctionResponse(status: 200, headers: [HTTPHeader(name: "content-type", value: "text/plain")], body: []))
            var offset = 0
            while offset < n {
                let end = min(n, offset + 65536)
                try await stream.write(bytes[offset..<end], deadlineNanos: MonotonicClock.nowNanos() + 5_000_000_000)
                offset = end
            }
            var r = FunctionResponse(status: 200, headers: [], body: [])
            r.streamed = true
            return r
        }
        return FunctionResponse(
            status: 200, headers: [HTTPHeader(name: "x-fn", value: "stub"), HTTPHeader(name: "connection", value: "keep-alive")],
            body: Array("echo:\(body)".utf8))
    }
    func freeze() throws(RunnerError) {}

    func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool { false }
    func stats() -> ContainerCounters? { ContainerCounters() }
    func close() async {}
}

/// Remembers every call that ended.
final class EndedCalls: CallListener {
    let records = Mutex<[CallRecord]>([])
    func beforeCall(_ call: Call) async throws(RunnerError) {}
    func afterCall(_ call: Call) async throws(RunnerError) { records.withLock { $0.append(call.record) } }
}

typealias RunnerClient = RunnerProtocol.Client<HTTP2ClientTransport.Posix>

/// A pure runner on a loopback port, its agent on `driver`, and a gRPC client playing Fn's LB.
enum GRPCHarness {
    static func withRunner(
        totalMemoryMB: UInt64 = 1024, nonBlocking: Bool = false, driver: any ContainerDriver = StubDriver(),
        _ body: (RunnerClient, Agent, EndedCalls) async throws -> Void
    ) async throws {
        try await withServer(totalMemoryMB: totalMemoryMB, nonBlocking: nonBlocking, driver: driver) { service, agent, ended in
            try await withClient(port: try #require(await service.listeningPort)) { try await body(RunnerClient(wrapping: $0), agent, ended) }
        }
    }

    /// A gRPC client of the runner on `port` for the length of `body`.
    static func withClient(
        port: Int, config: HTTP2ClientTransport.Posix.Config = .defaults, _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Void
    ) async throws {
        try await withGRPCClient(
            transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext, config: config)
        ) { client in
            try await body(client)
        }
    }

    /// A pure runner serving on its loopback port for the length of `body`, which may stop it.
    static func withServer(
        totalMemoryMB: UInt64 = 1024, nonBlocking: Bool = false, driver: any ContainerDriver = StubDriver(),
        _ body: (GRPCRunnerService, Agent, EndedCalls) async throws -> Void
    ) async throws {
        var config = AgentConfiguration()
        config.nonBlockingResources = nonBlocking
        config.shutdownGraceMillis = 1000
        let agent = Agent(
            configuration: config, driver: driver, tracker: ResourceTracker(totalMemoryBytes: totalMemoryMB << 20, totalCPUMillicores: 2000))
        let ended = EndedCalls()
        agent.addListener(ended)
        let service = GRPCRunnerService(host: "127.0.0.1", port: 0, runner: PureRunner(agent: agent))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await agent.run() }
            do {
                try await serving(service) { _ in try await body(service, agent, ended) }
            } catch {
                await agent.shutdown()
                throw error
            }
            await agent.shutdown()
            try await group.waitForAll()
        }
    }

    /// Runs `service` on its loopback port for the length of `body`, then stops it.
    static func serving(_ service: GRPCRunnerService, _ body: (Int) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            let port = await service.listeningPort
            do {
                try await body(try #require(port))
            } catch {
                service.stop()
                throw error
            }
            service.stop()
            try await group.waitForAll()
        }
    }

    /// Fn's call model as the LB sends it.
    static func model(id: String = CallID.make(), type: String = "sync", memory: Int = 128, format: String = "http-stream") -> String {
        """
        {"id":"\(id)","image":"stub/echo:1","type":"\(type)","format":"\(format)","memory":\(memory),"timeout":30,"idle_timeout":30,"method":"POST",\
        "url":"http://lb.test/invoke/f1","app_id":"a1","app_name":"app","fn_id":"f1","config":{"K":"v"},\
        "headers":{"Content-Type":["text/plain"],"X-Client":["c1"]}}
        """
    }

    /// The answer's body: its data frames' bytes, in order, as text.
    static func text(_ msgs: [RunnerMsg]) -> String {
        String(decoding: msgs.compactMap { m -> Data? in if case .data(let d)? = m.body { d.data } else { nil } }.reduce(Data(), +), as: UTF8.self)
    }

    /// One Engage: TryCall, the body in frames of `frameBytes` (the last with eof), and every
    /// message the runner answered.
    static func engage(
        _ c: RunnerClient, model: String = model(), body: [UInt8], slot: String = "", frameBytes: Int = 10 << 10,
        metadata: Metadata = [:]
    ) async throws -> [RunnerMsg] {
        try await c.engage(metadata: metadata) { writer in
            var first = ClientMsg()
            first.try = TryCall.with {
                $0.modelsCallJson = model
                $0.slotHashID = slot
            }
            try await writer.write(first)
            var offset = 0
            repeat {
                let end = min(body.count, offset + frameBytes)
                var frame = ClientMsg()
                frame.data = DataFrame.with {
                    $0.data = Data(body[offset..<end])
                    $0.eof = end == body.count
                }
                try await writer.write(frame)
                offset = end
            } while offset < body.count
        } onResponse: { response in
            var out: [RunnerMsg] = []
            for try await m in response.messages { out.append(m) }
            return out
        }
    }
}
