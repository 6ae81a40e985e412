import RunnerOS
import Synchronization

/// One call of a function: its definition, the request, its log, and its record, which moves
/// from queued to running to success, error or timeout. Made by `Agent.makeCall`, run by
/// `Agent.submit`.
public final class Call: Sendable {
    public let id: String
    public let function: FunctionDefinition
    public let request: FunctionRequest
    public let log: CallLog
    private let state: Mutex<CallRecord>

    init(id: String, function: FunctionDefinition, request: FunctionRequest, type: String, logLimit: Int) {
        self.id = id
        self.function = function
        var request = request
        request.callID = id
        self.request = request
        log = CallLog(limitBytes: logLimit)
        state = Mutex(
            CallRecord(
                id: id, status: .queued, appID: function.appID, appName: function.appName, fnID: function.fnID,
                fnName: function.fnName, image: function.image, format: function.format, type: type,
                memoryMB: function.memoryMB, cpuMillicores: function.cpuMillicores, timeoutSeconds: function.timeoutSeconds,
                idleTimeoutSeconds: function.idleTimeoutSeconds, method: request.method, url: request.url,
                createdAt: WallClock.rfc3339(WallClock.nowNanos(), millis: true)))
    }

    /// The call's record as it is now.
    public var record: CallRecord { state.withLock { $0 } }

    func markStarted() -> UInt64 {
        let now = WallClock.nowNanos()
        state.withLock {
            $0.status = .running
            $0.startedAt = WallClock.rfc3339(now, millis: true)
        }
        return now
    }

    func markEnded(_ error: RunnerError?, startedWallNanos: UInt64?, stats: CallStats?) {
        let now = WallClock.nowNanos()
        state.withLock { r in
            r.completedAt = WallClock.rfc3339(now, millis: true)
            if let startedWallNanos { r.executionDurationNanos = now &- min(startedWallNanos, now) }
            if let stats { r.stats = stats }
            if let error {
                r.status = error.code == .callTimeout ? .timeout : .error
                r.error = error.message
                r.errorCode = error.code.name
            } else {
                r.status = .success
                r.error = nil
                r.errorCode = nil
            }
        }
    }

    func replaceError(_ error: RunnerError) {
        state.withLock { r in
            r.status = error.code == .callTimeout ? .timeout : .error
            r.error = error.message
            r.errorCode = error.code.name
        }
    }
}
