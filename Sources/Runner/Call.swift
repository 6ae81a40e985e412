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
    /// `sync`, or `detached` (accepted with 202 and run from the durable queue).
    public let type: String
    /// Where the answer goes as it arrives, when the caller streams it to its client.
    public let responseStream: ResponseStream?
    /// The function's slot key, made once per call (it is a few dozen string operations), or
    /// the one Fn's load balancer chose (slot_hash_id).
    let slotKey: SlotKey
    /// Run when the call starts (after the listeners): a pure runner answers a detached call's
    /// 202 then.
    let onStart: (@Sendable () async -> Void)?
    /// The call's span and its phases' (nil unless the node traces).
    public let trace: CallTrace?
    /// Set once the call stopped waiting (it started or failed): sync calls that wait hold
    /// back detached ones.
    let leftWait = Atomic<Bool>(false)
    private let state: Mutex<CallRecord>
    /// Wall-clock times, formatted only when the record is read (off the hot path).
    private let times = Mutex<(created: UInt64, started: UInt64?, completed: UInt64?)>((0, nil, nil))

    init(
        id: String, function: FunctionDefinition, request: FunctionRequest, type: String, logLimit: Int, stream: ResponseStream? = nil,
        slotKey: SlotKey? = nil, onStart: (@Sendable () async -> Void)? = nil, trace: CallTrace? = nil
    ) {
        self.trace = trace
        self.id = id
        self.function = function
        var request = request
        request.callID = id
        self.request = request
        self.type = type
        responseStream = stream
        self.slotKey = slotKey ?? function.slotKey
        self.onStart = onStart
        log = CallLog(limitBytes: logLimit, callID: id)
        state = Mutex(
            CallRecord(
                id: id, status: .queued, appID: function.appID, appName: function.appName, fnID: function.fnID,
                fnName: function.fnName, image: function.image, format: function.format, type: type,
                memoryMB: function.memoryMB, cpuMillicores: function.cpuMillicores, timeoutSeconds: function.timeoutSeconds,
                idleTimeoutSeconds: function.idleTimeoutSeconds, method: request.method, url: request.url, createdAt: ""))
        times.withLock { $0.created = WallClock.nowNanos() }
    }

    public static let sync = "sync"
    public static let detached = "detached"

    /// The call's record as it is now.
    public var record: CallRecord {
        var r = state.withLock { $0 }
        let t = times.withLock { $0 }
        r.createdAt = WallClock.rfc3339(t.created, millis: true)
        r.startedAt = t.started.map { WallClock.rfc3339($0, millis: true) }
        r.completedAt = t.completed.map { WallClock.rfc3339($0, millis: true) }
        return r
    }

    /// Wall-clock nanoseconds of creation, start and completion.
    var wallTimes: (created: UInt64, started: UInt64?, completed: UInt64?) { times.withLock { $0 } }

    /// Whether the call reached its function (it started; it may have ended since).
    public var hasStarted: Bool { times.withLock { $0.started != nil } }

    /// The call's status now.
    public var status: CallRecord.Status { state.withLock { $0.status } }

    func markStarted() -> UInt64 {
        let now = WallClock.nowNanos()
        state.withLock { $0.status = .running }
        times.withLock { $0.started = now }
        return now
    }

    func markEnded(_ error: RunnerError?, startedWallNanos: UInt64?, stats: CallStats?) {
        let now = WallClock.nowNanos()
        times.withLock { $0.completed = now }
        state.withLock { r in
            if let startedWallNanos { r.executionDurationNanos = now &- min(startedWallNanos, now) }
            if let stats { r.stats = stats }
            if let error {
                r.status = Self.status(of: error)
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
            r.status = Self.status(of: error)
            r.error = error.message
            r.errorCode = error.code.name
        }
    }

    static func status(of error: RunnerError) -> CallRecord.Status {
        switch error.code {
        case .callTimeout: .timeout
        case .callCancelled: .cancelled
        default: .error
        }
    }
}
