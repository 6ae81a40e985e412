import Runner
import CgroupDriver
import FoundationEssentials
import CRunnerShim
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A hot function of the seed's `http` or `json` format: requests go in on its stdin, answers
/// come back on its stdout, its stderr is the running call's log. Ready as soon as it runs.
///
/// A call that fails or times out mid-exchange leaves the streams out of step, so it ends the
/// container: a late answer can never be read as the next call's. A json answer followed by
/// more output succeeds but ends the container too (Fn's excess data rule).
final class StdioHotContainer: HotContainerHandle {
    var container: Container { control.container }
    let format: FunctionFormat
    let stderr: ContainerOutput
    let control: FrozenContainer
    /// nil while a call has them, and for good after a call broke them.
    private let connection: HeldConnection

    private init(
        container: Container, format: FunctionFormat, connection: HTTPStreamConnection, stderr: ContainerOutput, throttling: Bool,
        onThaw: (@Sendable (Double) -> Void)?, onReclaim: (@Sendable (_ freedBytes: UInt64) -> Void)?
    ) {
        control = FrozenContainer(container, throttling: throttling, onThaw: onThaw, onReclaim: onReclaim)
        self.format = format
        self.stderr = stderr
        self.connection = HeldConnection(connection, what: "pipes")
    }

    static func start(_ task: ContainerTask, format: FunctionFormat, driver: NativeDriver) async throws(RunnerError) -> StdioHotContainer {
        var phases = StartPhases()
        var (spec, _) = try await driver.spec(for: task)
        phases.mark("image")
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        if let e = Pipes.make(&input) { throw .system("pipe2", errno: e, "cannot create the stdin pipe of \(task.name)") }
        if let e = Pipes.make(&output) {
            Glibc.close(input[0])
            Glibc.close(input[1])
            throw .system("pipe2", errno: e, "cannot create the stdout pipe of \(task.name)")
        }
        let stderr: ContainerOutput
        do {
            stderr = try ContainerOutput(
                name: task.name, logger: driver.logger, syslog: try await driver.syslog(for: task, .err),
                nodeLog: driver.nodeLog(for: task, stream: "stderr"))
        } catch {
            for fd in input + output { Glibc.close(fd) }
            throw error
        }
        spec.stdin = input[0]
        spec.stdout = output[1]
        spec.stderr = stderr.writeFD
        let container: Container
        do {
            container = try await driver.sandbox.startOnWorkerThread(spec, name: task.name)
        } catch {
            for fd in input + output { Glibc.close(fd) }
            stderr.close()
            throw error
        }
        Glibc.close(input[0])
        Glibc.close(output[1])
        stderr.containerStarted()
        let connection = HTTPStreamConnection(readFD: output[0], writeFD: input[1])
        connection.maxHeaderBytes = task.maxResponseHeaderBytes
        phases.sandboxStarted(container)
        driver.reportStarted(task, format: format.rawValue, phases)
        return StdioHotContainer(
            container: container, format: format, connection: connection, stderr: stderr, throttling: task.function.cpuMillicores > 0,
            onThaw: task.onThaw, onReclaim: task.onReclaim)
    }

    /// Answers are gathered whole (`stream` is not used): the stdio formats are Fn's old ones.
    func call(_ request: FunctionRequest, timeout: Duration, maxBodyBytes: Int, log: CallLog, stream: ResponseStream?)
        async throws(RunnerError) -> FunctionResponse
    {
        try await control.thawIfFrozen()
        let connection = try self.connection.take()
        if let exit = container.exit {
            throw RunnerError(.unavailable, "the function exited (\(exit))", step: "call function")
        }
        stderr.attach(log)
        defer { stderr.detach() }
        let deadline = MonotonicClock.nowNanos() &+ timeout.nanoseconds
        let format = self.format
        let (response, reusable) = try await { () async throws(RunnerError) -> (FunctionResponse, Bool) in
            switch format {
            case .json:
                let (object, excess) = try await connection.exchangeJSON(
                    StdioFormats.jsonRequest(request), deadlineNanos: deadline, maxBytes: maxBodyBytes)
                return (try StdioFormats.jsonResponse(object, maxBodyBytes: maxBodyBytes), !excess)
            default:
                do throws(RunnerError) {
                    return (try await connection.exchange(StdioFormats.httpRequest(request), deadlineNanos: deadline, maxBodyBytes: maxBodyBytes), true)
                } catch where error.code == .invalidArgument {
                    throw RunnerError(.functionInvalidResponse, "invalid http response from function err: \(error.message)", step: "read response")
                }
            }
        }()
        if reusable { self.connection.give(connection) }
        var result = response
        result.endsContainer = !reusable
        return result
    }

    func freeze() throws(RunnerError) { try control.freeze() }


    func thaw() async throws(RunnerError) { try await control.thawIfFrozen() }

    func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool { await control.diedOfOOM(waitingUpTo: timeout) }

    func stats() -> ContainerCounters? { control.stats() }

    func callCounters() -> ContainerCounters? { control.stats(memoryNow: false) }

    func onExit(_ action: @escaping @Sendable () -> Void) { container.onExit { _ in action() } }

    func close() async {
        connection.drop()
        await control.close()
        stderr.close()
    }
}

/// The wire formats of the seed's hot stdio formats.
enum StdioFormats {
    /// `http`: an HTTP/1.1 request with the original method and path, and Fn's headers.
    static func httpRequest(_ r: FunctionRequest) -> [UInt8] {
        var path = "/"
        let parts = r.url.split(separator: "://", maxSplits: 1)
        if parts.count == 2 {
            let rest = parts[1]
            if let slash = rest.firstIndex(of: "/") { path = String(rest[slash...]) }
        } else if r.url.hasPrefix("/") {
            path = r.url
        }
        var head = "\(r.method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        head += "Fn_deadline: \(r.deadline)\r\nFn_method: \(r.method)\r\nFn_request_url: \(r.url)\r\nFn_call_id: \(r.callID)\r\n"
        if let ct = r.contentType { head += "Content-Type: \(ct)\r\n" }
        for (name, value) in r.passedHeaders { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(r.body.count)\r\n\r\n"
        return Array(head.utf8) + r.body
    }

    struct JSONInput: Encodable {
        struct Wire: Encodable {
            var type = "http"
            var method: String
            var request_url: String
            var headers: [String: [String]]
        }
        var call_id: String
        var deadline: String
        var body: String
        var content_type: String
        var `protocol`: Wire
    }

    struct JSONOutput: Decodable {
        struct Wire: Decodable {
            var status_code: Int?
            var headers: [String: [String]]?
        }
        var body: String?
        var content_type: String?
        var `protocol`: Wire?
    }

    /// `json`: one object per call, ended by a newline.
    static func jsonRequest(_ r: FunctionRequest) -> [UInt8] {
        var headers: [String: [String]] = [:]
        for (name, value) in r.passedHeaders { headers[name, default: []].append(value) }
        if let ct = r.contentType { headers["Content-Type", default: []].append(ct) }
        let input = JSONInput(
            call_id: r.callID, deadline: r.deadline, body: String(decoding: r.body, as: UTF8.self), content_type: r.contentType ?? "",
            protocol: .init(method: r.method, request_url: r.url, headers: headers))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(input)) ?? Data("{}".utf8)) + [0x0a]
    }

    /// The function's object, applied as Fn applies it: protocol headers first, then a
    /// non-empty content_type overrides Content-Type, then the status (if set), then the body.
    static func jsonResponse(_ object: [UInt8], maxBodyBytes: Int) throws(RunnerError) -> FunctionResponse {
        let out: JSONOutput
        do {
            out = try JSONDecoder().decode(JSONOutput.self, from: Data(object))
        } catch {
            throw RunnerError(.functionInvalidResponse, "invalid json response from function err: \(error)", step: "read response")
        }
        var headers: [HTTPHeader] = []
        for (name, values) in (out.protocol?.headers ?? [:]).sorted(by: { $0.key < $1.key }) {
            for v in values { headers.append(HTTPHeader(name: name.lowercased(), value: v)) }
        }
        if let ct = out.content_type, !ct.isEmpty {
            headers.removeAll { $0.name == "content-type" }
            headers.append(HTTPHeader(name: "content-type", value: ct))
        }
        let body = Array((out.body ?? "").utf8)
        if maxBodyBytes > 0 && body.count > maxBodyBytes { throw CallErrors.responseTooBig() }
        let status = out.protocol?.status_code ?? 0
        return FunctionResponse(status: status == 0 ? 200 : status, headers: headers, body: body)
    }
}
