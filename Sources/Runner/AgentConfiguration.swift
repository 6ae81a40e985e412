import RunnerOS

/// The agent's settings, named after Fn's FN_* variables (`fromEnvironment` reads them).
public struct AgentConfiguration: Sendable, Equatable {
    /// FN_FREEZE_IDLE_MSECS: how long an idle hot container waits before it is frozen;
    /// 0 freezes at once, negative never.
    public var freezeIdleMillis: Int = 50
    /// FN_FREEZE_RECLAIM: after freezing an idle container, reclaim its memory (cgroup v2
    /// `memory.reclaim`; a no-op elsewhere). A fn's annotation fnrunner.io/freeze-reclaim wins.
    public var freezeReclaim = false
    /// FN_HOT_POLL_MSECS: how often a waiting call re-checks whether a container must be launched.
    public var hotPollMillis: Int = 200
    /// FN_HOT_LAUNCHER_TIMEOUT_MSECS: a slot queue with no calls and no containers for
    /// max(this, 2 × the function's idle timeout) is dropped.
    public var hotLauncherTimeoutMillis: Int = 3_600_000
    /// FN_HOT_START_TIMEOUT_MSECS: how long a new hot container may take to listen (→ 504).
    public var hotStartTimeoutMillis: Int = 5_000
    /// FN_MAX_WAIT_MSECS: how long a call may wait for a container or resources before 503
    /// (nil: the function's timeout).
    public var maxWaitMillis: Int?
    /// FN_MAX_RESPONSE_SIZE: the largest response body a function may send; 0 = unlimited.
    public var maxResponseBytes: Int = 0
    /// FN_MAX_HDR_RESPONSE_SIZE: the largest response head a function may send (→ 502
    /// "function response header too large"); 0 = the default, 64 KiB.
    public var maxResponseHeaderBytes: Int = ContainerTask.defaultMaxResponseHeaderBytes
    /// FN_MAX_LOG_SIZE_BYTES: how much of a call's log is kept.
    public var maxLogBytes: Int = CallLog.defaultLimit
    /// FN_ENABLE_NB_RESOURCE_TRACKER: answer 503 at once when nothing fits and nothing can be
    /// evicted, instead of waiting (what Fn's LB expects from pure runners).
    public var nonBlockingResources = false
    /// FN_SHUTDOWN_GRACE_MSECS: how long shutdown waits for running calls before ending them.
    public var shutdownGraceMillis: Int = 30_000

    public init() {}

    /// Reads the FN_* variables; an unparsable value is an error naming the variable.
    public static func fromEnvironment(_ values: [String: String]) throws(RunnerError) -> AgentConfiguration {
        let env = FnEnvironment(values)
        var c = AgentConfiguration()
        c.freezeIdleMillis = try env.int("FN_FREEZE_IDLE_MSECS", default: c.freezeIdleMillis)
        c.freezeReclaim = try env.bool("FN_FREEZE_RECLAIM", default: c.freezeReclaim)
        c.hotPollMillis = try env.int("FN_HOT_POLL_MSECS", default: c.hotPollMillis, minimum: 1)
        c.hotLauncherTimeoutMillis = try env.int("FN_HOT_LAUNCHER_TIMEOUT_MSECS", default: c.hotLauncherTimeoutMillis)
        c.hotStartTimeoutMillis = try env.int("FN_HOT_START_TIMEOUT_MSECS", default: c.hotStartTimeoutMillis)
        if env.string("FN_MAX_WAIT_MSECS") != nil { c.maxWaitMillis = try env.int("FN_MAX_WAIT_MSECS", default: 0, minimum: 0) }
        c.maxResponseBytes = try env.int("FN_MAX_RESPONSE_SIZE", default: c.maxResponseBytes, minimum: 0)
        let headerBytes = try env.int("FN_MAX_HDR_RESPONSE_SIZE", default: 0, minimum: 0)
        if headerBytes > 0 { c.maxResponseHeaderBytes = headerBytes }
        c.maxLogBytes = try env.int("FN_MAX_LOG_SIZE_BYTES", default: c.maxLogBytes, minimum: 0)
        c.shutdownGraceMillis = try env.int("FN_SHUTDOWN_GRACE_MSECS", default: c.shutdownGraceMillis, minimum: 0)
        c.nonBlockingResources = try env.bool("FN_ENABLE_NB_RESOURCE_TRACKER", default: c.nonBlockingResources)
        return c
    }

    /// Fn reads a negative or huge millisecond value as "never".
    package static func duration(_ ms: Int) -> Duration? { ms < 0 || ms > 100 * 365 * 86_400_000 ? nil : .milliseconds(ms) }
}
