/// What is known about one call, in Fn's call model: kept for `/calls`, written to the store,
/// passed to listeners. Timestamps are RFC 3339 with milliseconds, as Fn writes them.
public struct CallRecord: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case queued, running, success, error, timeout
        /// The client went away before the function answered; the call was stopped.
        case cancelled
    }

    public var id: String
    public var status: Status
    public var appID: String
    public var appName: String
    public var fnID: String
    public var fnName: String
    public var image: String
    public var format: String
    /// `sync`, or `detached` for calls accepted with 202.
    public var type: String
    public var memoryMB: UInt64
    public var cpuMillicores: UInt64
    public var timeoutSeconds: Int
    public var idleTimeoutSeconds: Int
    public var method: String
    public var url: String
    public var createdAt: String
    public var startedAt: String?
    public var completedAt: String?
    /// From the start of execution to its end, in nanoseconds (Fn's execution_duration).
    public var executionDurationNanos: UInt64?
    /// The error's message, as the client got it.
    public var error: String?
    /// The error's code (RunnerError.Code), for programs.
    public var errorCode: String?
    public var stats: CallStats?

    public init(
        id: String, status: Status, appID: String, appName: String, fnID: String, fnName: String, image: String, format: String,
        type: String, memoryMB: UInt64, cpuMillicores: UInt64, timeoutSeconds: Int, idleTimeoutSeconds: Int, method: String, url: String,
        createdAt: String, startedAt: String? = nil, completedAt: String? = nil, executionDurationNanos: UInt64? = nil,
        error: String? = nil, errorCode: String? = nil, stats: CallStats? = nil
    ) {
        self.id = id
        self.status = status
        self.appID = appID
        self.appName = appName
        self.fnID = fnID
        self.fnName = fnName
        self.image = image
        self.format = format
        self.type = type
        self.memoryMB = memoryMB
        self.cpuMillicores = cpuMillicores
        self.timeoutSeconds = timeoutSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.method = method
        self.url = url
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.executionDurationNanos = executionDurationNanos
        self.error = error
        self.errorCode = errorCode
        self.stats = stats
    }

    enum CodingKeys: String, CodingKey {
        case id, status, image, format, type, method, url, error, stats
        case appID = "app_id", appName = "app_name", fnID = "fn_id", fnName = "fn_name"
        case memoryMB = "memory", cpuMillicores = "cpus", timeoutSeconds = "timeout", idleTimeoutSeconds = "idle_timeout"
        case createdAt = "created_at", startedAt = "started_at", completedAt = "completed_at"
        case executionDurationNanos = "execution_duration", errorCode = "error_code"
    }
}

/// What a call cost, from its container's cgroup counters (deltas over the call, except the peak).
public struct CallStats: Sendable, Equatable, Codable {
    /// CPU time the container used during the call.
    public var cpuNanos: UInt64
    public var cpuThrottledPeriods: UInt64
    public var cpuThrottledNanos: UInt64
    /// The container's memory high-water mark so far (its whole life: the kernel keeps one).
    public var memoryPeakBytes: UInt64?
    /// Whether the call ran on a container that served calls before (a warm start).
    public var reusedContainer: Bool
    public var container: String
    /// Network bytes the function received and sent during the call (on the bridge only).
    public var networkReceivedBytes: UInt64?
    public var networkSentBytes: UInt64?

    enum CodingKeys: String, CodingKey {
        case cpuNanos = "cpu_ns", cpuThrottledPeriods = "cpu_throttled_periods", cpuThrottledNanos = "cpu_throttled_ns"
        case memoryPeakBytes = "memory_peak_bytes", reusedContainer = "reused_container"
        case container
        case networkReceivedBytes = "net_rx_bytes", networkSentBytes = "net_tx_bytes"
    }

    public init(before: ContainerCounters?, after: ContainerCounters?, reusedContainer: Bool, container: String) {
        let a = after ?? ContainerCounters()
        let b = before ?? ContainerCounters()
        cpuNanos = a.cpuUsageNanos &- min(b.cpuUsageNanos, a.cpuUsageNanos)
        cpuThrottledPeriods = a.cpuThrottledPeriods &- min(b.cpuThrottledPeriods, a.cpuThrottledPeriods)
        cpuThrottledNanos = a.cpuThrottledNanos &- min(b.cpuThrottledNanos, a.cpuThrottledNanos)
        memoryPeakBytes = a.memoryPeakBytes
        // A cold container's "before" is its start: everything it moved was this call's.
        func delta(_ after: UInt64?, _ before: UInt64?) -> UInt64? { after.map { $0 &- min(before ?? 0, $0) } }
        networkReceivedBytes = delta(a.networkReceivedBytes, b.networkReceivedBytes)
        networkSentBytes = delta(a.networkSentBytes, b.networkSentBytes)
        self.reusedContainer = reusedContainer
        self.container = container
    }
}
