import RunnerOS

/// The agent's settings, named after Fn's FN_* variables (`fromEnvironment` reads them).
public struct AgentConfiguration: Sendable, Equatable {
    /// FN_FREEZE_IDLE_MSECS: how long an idle hot container waits before it is frozen;
    /// 0 freezes at once, negative never.
    public var freezeIdleMillis: Int = 50
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
    /// FN_MAX_LOG_SIZE_BYTES: how much of a call's log is kept.
    public var maxLogBytes: Int = CallLog.defaultLimit
    /// FN_ENABLE_NB_RESOURCE_TRACKER: answer 503 at once when nothing fits and nothing can be
    /// evicted, instead of waiting (what Fn's LB expects from pure runners).
    public var nonBlockingResources = false
    /// FN_SHUTDOWN_GRACE_MSECS: how long shutdown waits for running calls before ending them.
    public var shutdownGraceMillis: Int = 30_000

    public init() {}

    /// Reads the FN_* variables; an unparsable value is an error naming the variable.
    public static func fromEnvironment(_ env: [String: String]) throws(RunnerError) -> AgentConfiguration {
        var c = AgentConfiguration()
        func int(_ name: String, _ keep: Int) throws(RunnerError) -> Int {
            guard let text = env[name]?.trimmed, !text.isEmpty else { return keep }
            guard let v = Int(text) else {
                throw RunnerError(.invalidArgument, "\(name) must be an integer, not \"\(text)\"", step: "read configuration")
            }
            return v
        }
        func size(_ name: String, _ keep: Int) throws(RunnerError) -> Int {
            let v = try int(name, keep)
            if v < 0 { throw RunnerError(.invalidArgument, "\(name) must not be negative (\(v))", step: "read configuration") }
            return v
        }
        c.freezeIdleMillis = try int("FN_FREEZE_IDLE_MSECS", c.freezeIdleMillis)
        c.hotPollMillis = try int("FN_HOT_POLL_MSECS", c.hotPollMillis)
        if c.hotPollMillis <= 0 {
            throw RunnerError(.invalidArgument, "FN_HOT_POLL_MSECS must be positive (\(c.hotPollMillis))", step: "read configuration")
        }
        c.hotLauncherTimeoutMillis = try int("FN_HOT_LAUNCHER_TIMEOUT_MSECS", c.hotLauncherTimeoutMillis)
        c.hotStartTimeoutMillis = try int("FN_HOT_START_TIMEOUT_MSECS", c.hotStartTimeoutMillis)
        if env["FN_MAX_WAIT_MSECS"] != nil { c.maxWaitMillis = try size("FN_MAX_WAIT_MSECS", 0) }
        c.maxResponseBytes = try size("FN_MAX_RESPONSE_SIZE", c.maxResponseBytes)
        c.maxLogBytes = try size("FN_MAX_LOG_SIZE_BYTES", c.maxLogBytes)
        c.shutdownGraceMillis = try size("FN_SHUTDOWN_GRACE_MSECS", c.shutdownGraceMillis)
        if let nb = env["FN_ENABLE_NB_RESOURCE_TRACKER"]?.trimmed.lowercased(), !nb.isEmpty {
            switch nb {
            case "1", "true", "yes", "on": c.nonBlockingResources = true
            case "0", "false", "no", "off": c.nonBlockingResources = false
            default:
                throw RunnerError(.invalidArgument, "FN_ENABLE_NB_RESOURCE_TRACKER must be true or false, not \"\(nb)\"", step: "read configuration")
            }
        }
        return c
    }

    /// Fn reads a negative or huge millisecond value as "never".
    static func duration(_ ms: Int) -> Duration? { ms < 0 || ms > 100 * 365 * 86_400_000 ? nil : .milliseconds(ms) }
}
