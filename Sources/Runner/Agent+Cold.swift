import Logging
import Tracing
import RunnerOS

/// Cold calls (format `default`): a container per call, request data in its environment, the
/// body on stdin, the answer from stdout.
extension Agent {
    func submitCold(_ call: Call) async throws(RunnerError) -> FunctionResponse {
        let f = call.function
        guard enterRunning() else { throw CallErrors.shuttingDown() }
        defer { leaveRunning() }
        let acquired = await resources(for: f, key: call.slotKey.value, deadline: clock.nanos(after: waitLimit(f))) { true }
        let token: ResourceToken
        switch acquired {
        case .granted(let t): token = t
        case .refused(let error): throw error
        case .noLongerWanted: throw CallErrors.serverBusy()
        }
        defer { token.release() }
        if Task.isCancelled { throw CallErrors.cancelled("wait for resources") }
        let started = try await start(call)
        let timeout = Duration.seconds(max(0, f.timeoutSeconds))
        var task = ContainerTask(
            function: f, name: nextContainerName(f), spawnCallID: call.id, startTimeout: timeout, timeout: timeout)
        task.maxOutputBytes = configuration.maxResponseBytes
        let metrics = self.metrics
        task.onPull = { metrics.observePull(seconds: $0) }
        task.onStartPhases = { metrics.observeStartPhases($0) }
        task.trace = call.trace
        // A cold container's run is the function's answer (its start a span inside the call's).
        var request = call.request
        let span = call.trace?.startFunction(container: task.name, headers: &request.headers)
        defer { if let span { call.trace?.finish(span) } }
        task.extraEnvironment = Self.coldEnvironment(
            request, callID: call.id, deadline: WallClock.rfc3339(WallClock.nowNanos() &+ timeout.nanoseconds, millis: true))
        var stats: CallStats?
        let result: Result<FunctionResponse, RunnerError>
        do {
            let ran = try await driver.runCold(task, request: call.request, log: call.log)
            stats = CallStats(before: nil, after: ran.counters, reusedContainer: false, container: task.name)
            if ran.outOfMemory {
                logger.warning(
                    "a container ran out of memory",
                    metadata: f.logMetadata(container: task.name).merging(["call_id": "\(call.id)", "memory_mb": "\(f.memoryMB)"]) { $1 })
                result = .failure(CallErrors.outOfMemory(f.memoryMB))
            } else if ran.exitCode != 0 {
                result = .failure(CallErrors.containerExit(ran.exitCode))
            } else {
                let type = ran.stdout.first == UInt8(ascii: "{") ? "application/json; charset=utf-8" : "text/plain; charset=utf-8"
                result = .success(FunctionResponse(status: 200, headers: [HTTPHeader(name: "content-type", value: type)], body: ran.stdout))
            }
        } catch {
            switch error.code {
            case .timeout: result = .failure(CallErrors.callTimeout())
            case .responseTooBig: result = .failure(error)
            default: result = .failure(error)
            }
        }
        return try await end(call, started: started, stats: stats, result)
    }

    /// What a cold function finds in its environment about the request (Fn's cold format).
    static func coldEnvironment(_ request: FunctionRequest, callID: String, deadline: String) -> [String] {
        var env = ["FN_DEADLINE=\(deadline)", "FN_METHOD=\(request.method)", "FN_REQUEST_URL=\(request.url)", "FN_CALL_ID=\(callID)"]
        var headers: [(String, [String])] = []
        func add(_ name: String, _ value: String) {
            let canonical = GoHeaderName.canonical(name)
            if let i = headers.firstIndex(where: { $0.0 == canonical }) {
                headers[i].1.append(value)
            } else {
                headers.append((canonical, [value]))
            }
        }
        if let ct = request.contentType { add("Content-Type", ct) }
        // Every request header, as Fn's cold format gives them (Content-Type once, above).
        for (name, value) in request.headers where !HopByHop.contains(name) && name.lowercased() != "content-type" { add(name, value) }
        for (name, values) in headers where !name.contains("=") {
            env.append("FN_HEADER_\(name)=\(values.joined(separator: ", "))")
        }
        return env
    }
}
