import RunnerOS

/// How the agent sees containers: started for a function, called, frozen, thawed and closed.
/// The native driver backs it with the sandbox and the image store; a fake one with a
/// test-controlled clock backs the agent's unit tests.
public protocol ContainerDriver: Sendable {
    /// Starts a hot container (formats http-stream, http, json) and returns once it can take a
    /// call. Init failures are `containerInit` (502) or `containerInitTimeout` (504) errors.
    func startHot(_ task: ContainerTask) async throws(RunnerError) -> any HotContainerHandle

    /// Runs a cold container (format `default`) for one call: the request body on stdin, the
    /// response from stdout, until it exits or `task.timeout` passes.
    func runCold(_ task: ContainerTask, request: FunctionRequest, log: CallLog) async throws(RunnerError) -> ColdResult

    /// How container starts went so far, for /metrics (nil: the driver has no such thing).
    var startPaths: ContainerStartPaths? { get }

    /// Ends what the driver keeps beside the agent's containers (zygote templates), once the
    /// agent has let its own containers go.
    func shutdown() async

    /// A fn was saved (`definition`, as its calls will now see it) or deleted (nil): what the
    /// driver keeps for another definition of it can go.
    func functionChanged(fnID: String, to definition: FunctionDefinition?)
}

/// Starts that came from the sandbox pool or took the direct path, and sandboxes ready now.
public struct ContainerStartPaths: Sendable, Equatable {
    public var pooled: Int
    public var direct: Int
    public var poolReady: Int
    /// Instances forked from a zygote template (not counted in `pooled` or `direct`).
    public var forked = 0
    /// Starts of zygote functions that fell back to a normal container (no template to fork).
    public var zygoteFallbacks = 0

    public init(pooled: Int, direct: Int, poolReady: Int) {
        self.pooled = pooled
        self.direct = direct
        self.poolReady = poolReady
    }
}

extension ContainerDriver {
    public var startPaths: ContainerStartPaths? { nil }

    public func shutdown() async {}

    public func functionChanged(fnID: String, to definition: FunctionDefinition?) {}
}

/// One started hot container, as the agent drives it. One call at a time.
public protocol HotContainerHandle: AnyObject, Sendable {
    /// Sends one call and reads the answer, thawing first if frozen. A thrown error means the
    /// container can take no more calls; `.timeout` when `timeout` passed, `.callCancelled`
    /// when the calling task was cancelled. With a `stream`, a container that can passes a
    /// 200 answer's body on as it arrives (the result is then `streamed`, its body empty).
    func call(_ request: FunctionRequest, timeout: Duration, maxBodyBytes: Int, log: CallLog, stream: ResponseStream?)
        async throws(RunnerError) -> FunctionResponse

    /// Freezes the idle container; a failure means it must end.
    func freeze() throws(RunnerError)

    /// Thaws it if frozen, when a call has taken it and before the call starts (as Fn
    /// unfreezes at slot acquisition); a failure means it must end and the call waits for
    /// another container.
    func thaw() async throws(RunnerError)

    /// Whether the kernel killed something in it for its memory limit, waiting up to `timeout`
    /// for a dying process to become visible.
    func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool

    /// Cumulative counters of the container's cgroup, for per-call deltas and `fnrunner ps`.
    func stats() -> ContainerCounters?

    /// The counters a call's stats are made from, read after every call: all of `stats()` but
    /// the memory in use now, which no call record holds (a read fewer per call).
    func callCounters() -> ContainerCounters?

    /// Whether a call from the current thread would be served on this thread: the container
    /// is not frozen, and its I/O is read by the caller's own event loop (or goes to a loop at
    /// its first call). On a node with several event loops a call prefers such a container
    /// among the newest idle ones: one read by another loop hands every answer across threads.
    var isLocalToCaller: Bool { get }

    /// Calls `action` once the container's process has ended (at once if it already has), also
    /// when no call is running: a hot container can die while idle (killed, a crash, or a zygote
    /// instance whose template ended), and the agent must then stop offering it, as Fn's agent
    /// ends a slot whose container exited, instead of failing the next call on it.
    func onExit(_ action: @escaping @Sendable () -> Void)

    /// Ends the container and everything made for it (thawing it first if need be).
    func close() async
}

extension HotContainerHandle {
    /// Containers that are never frozen have nothing to thaw.
    public func thaw() async throws(RunnerError) {}

    /// A container whose I/O is bound to no thread: calls take the newest idle one.
    public var isLocalToCaller: Bool { false }

    /// A driver whose counters cost nothing to read gives them all.
    public func callCounters() -> ContainerCounters? { stats() }

    /// A call whose answer is gathered whole.
    public func call(_ request: FunctionRequest, timeout: Duration, maxBodyBytes: Int, log: CallLog) async throws(RunnerError)
        -> FunctionResponse
    {
        try await call(request, timeout: timeout, maxBodyBytes: maxBodyBytes, log: log, stream: nil)
    }
}

/// What the agent gives the driver to make a container.
public struct ContainerTask: Sendable {
    public var function: FunctionDefinition
    /// Unique per agent, usable as a path element.
    public var name: String
    /// The call that asked for this container (Fn's FN_SPAWN_CALL_ID).
    public var spawnCallID: String
    /// For hot containers, how long the function may take to start listening.
    public var startTimeout: Duration
    /// For cold containers, how long the whole run may take.
    public var timeout: Duration
    /// Extra environment (cold calls: FN_DEADLINE, FN_METHOD, ...), added to the function's.
    public var extraEnvironment: [String] = []
    /// For hot containers, the largest response head a call may get (FN_MAX_HDR_RESPONSE_SIZE).
    public var maxResponseHeaderBytes = ContainerTask.defaultMaxResponseHeaderBytes
    /// FN_MAX_HDR_RESPONSE_SIZE's default, 64 KiB.
    public static let defaultMaxResponseHeaderBytes = 64 << 10
    /// For cold containers, the most stdout kept as the response (FN_MAX_RESPONSE_SIZE; 0 = no limit).
    public var maxOutputBytes = 0
    /// Told how long each thaw of this container took (seconds), for the metrics.
    public var onThaw: (@Sendable (Double) -> Void)?
    /// Told when starting this container needed an image pull, and how long it took (seconds).
    public var onPull: (@Sendable (Double) -> Void)?
    /// When set, each freeze is followed by a reclaim of the container's memory (where the
    /// host can: cgroup v2), and this is told how many bytes it freed.
    public var onReclaim: (@Sendable (_ freedBytes: UInt64) -> Void)?
    /// Told the phases of this container's start (for `fn_container_start_phase_seconds`).
    public var onStartPhases: (@Sendable ([TimedPhase]) -> Void)?
    /// The traced call that asked for this container: its start becomes a span of that call.
    public var trace: CallTrace?

    public init(function: FunctionDefinition, name: String, spawnCallID: String, startTimeout: Duration, timeout: Duration) {
        self.function = function
        self.name = name
        self.spawnCallID = spawnCallID
        self.startTimeout = startTimeout
        self.timeout = timeout
    }
}

/// How a cold container ended.
public struct ColdResult: Sendable, Equatable {
    public var exitCode: Int32
    public var outOfMemory: Bool
    /// What it wrote to stdout (bounded by the call's response limit).
    public var stdout: [UInt8]
    public var counters: ContainerCounters?

    public init(exitCode: Int32, outOfMemory: Bool = false, stdout: [UInt8] = [], counters: ContainerCounters? = nil) {
        self.exitCode = exitCode
        self.outOfMemory = outOfMemory
        self.stdout = stdout
        self.counters = counters
    }
}

/// A container's cgroup counters at one moment.
public struct ContainerCounters: Sendable, Equatable, Codable {
    public var cpuUsageNanos: UInt64
    public var cpuThrottledPeriods: UInt64
    public var cpuThrottledNanos: UInt64
    public var memoryCurrentBytes: UInt64
    public var memoryPeakBytes: UInt64?
    /// Bytes through the container's bridge link so far, from the function's side (nil off
    /// the bridge).
    public var networkReceivedBytes: UInt64?
    public var networkSentBytes: UInt64?

    public init(
        cpuUsageNanos: UInt64 = 0, cpuThrottledPeriods: UInt64 = 0, cpuThrottledNanos: UInt64 = 0, memoryCurrentBytes: UInt64 = 0,
        memoryPeakBytes: UInt64? = nil
    ) {
        self.cpuUsageNanos = cpuUsageNanos
        self.cpuThrottledPeriods = cpuThrottledPeriods
        self.cpuThrottledNanos = cpuThrottledNanos
        self.memoryCurrentBytes = memoryCurrentBytes
        self.memoryPeakBytes = memoryPeakBytes
    }
}

/// One hot container as `fnrunner ps` lists it.
public struct ContainerInfo: Sendable, Equatable, Codable {
    public var name: String
    public var fnID: String
    /// idle, paused (frozen), busy, …
    public var state: String
    public var calls: Int
    public var frozenForMillis: UInt64?
    /// The container's memory high-water mark (or current use where there is no peak).
    public var memoryBytes: UInt64?
    public var memoryLimitBytes: UInt64
    /// How long it has been in `state`.
    public var stateForMillis: UInt64?
    public var memoryCurrentBytes: UInt64?
    public var memoryPeakBytes: UInt64?
    /// CPU time its processes used so far.
    public var cpuMillis: UInt64?
    /// The call it served last (or serves now).
    public var lastCallID: String?

    public init(
        name: String, fnID: String, state: String, calls: Int, frozenForMillis: UInt64?, memoryBytes: UInt64?, memoryLimitBytes: UInt64
    ) {
        self.name = name
        self.fnID = fnID
        self.state = state
        self.calls = calls
        self.frozenForMillis = frozenForMillis
        self.memoryBytes = memoryBytes
        self.memoryLimitBytes = memoryLimitBytes
    }

    enum CodingKeys: String, CodingKey {
        case name, state, calls
        case fnID = "fn_id", frozenForMillis = "frozen_for_ms", memoryBytes = "memory_bytes", memoryLimitBytes = "memory_limit_bytes"
        case stateForMillis = "state_for_ms", memoryCurrentBytes = "memory_current_bytes", memoryPeakBytes = "memory_peak_bytes"
        case cpuMillis = "cpu_ms", lastCallID = "last_call_id"
    }
}
