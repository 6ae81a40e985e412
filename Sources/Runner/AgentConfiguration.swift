/// The agent's settings, named after Fn's FN_* variables.
public struct AgentConfiguration: Sendable {
    /// FN_FREEZE_IDLE_MSECS: how long an idle hot container waits before it is frozen;
    /// 0 freezes at once, negative never.
    public var freezeIdleMillis: Int = 50
    /// FN_HOT_POLL_MSECS: how often a waiting call re-checks whether a container must be launched.
    public var hotPollMillis: Int = 200
    /// How long a call may wait for a container before 503 (nil: the function's timeout).
    public var maxWaitMillis: Int?
    /// How long a new container may take to open its socket.
    public var readyTimeoutMillis: Int = 30_000
    /// FN_MAX_RESPONSE_SIZE: the largest response body a function may send; 0 = unlimited.
    public var maxResponseBytes: Int = 0
    /// Where the containers' iofs directories are made (host side).
    public var iofsRoot: String

    public init(iofsRoot: String) { self.iofsRoot = iofsRoot }
}
