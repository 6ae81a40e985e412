import RunnerOS

/// Where detached calls wait: durable, so that a runner killed at any moment loses no call it
/// accepted. The store implements it; `AsyncCallConsumer` drains it through the agent.
///
/// At least once: a call leaves the queue only in the same step that stores its final record
/// (`complete`), so it is either run again after a crash or recorded as ended, never both lost
/// and reported.
public protocol CallQueue: Sendable {
    /// Stores the call (its definition, request and `queued` record) before returning; only
    /// then may the client be told 202.
    func enqueue(_ call: Call) async throws(RunnerError)

    /// Takes the oldest unclaimed call and marks it claimed by this process; nil when none.
    func claim() async throws(RunnerError) -> QueuedCall?

    /// Gives a claimed call back, unstarted (the node was busy or is shutting down).
    func release(_ id: String) async throws(RunnerError)

    /// Stores the call's final record and log, and removes it from the queue, in one step.
    func complete(_ call: Call) async throws(RunnerError)

    /// Claims left by a process that ended without finishing them become unclaimed again (they
    /// run again: at least once). Returns how many. Called once at startup, before `claim`.
    func recoverClaims() async throws(RunnerError) -> Int
}

/// A detached call as the queue keeps it: what it runs, with what input, since when.
public struct QueuedCall: Sendable, Equatable {
    public var id: String
    public var function: FunctionDefinition
    public var method: String
    public var url: String
    public var contentType: String?
    public var headers: [[String]]
    public var body: [UInt8]
    /// How many times a runner claimed it (1 on its first run).
    public var attempts: Int

    public init(
        id: String, function: FunctionDefinition, method: String, url: String, contentType: String?, headers: [[String]],
        body: [UInt8], attempts: Int
    ) {
        self.id = id
        self.function = function
        self.method = method
        self.url = url
        self.contentType = contentType
        self.headers = headers
        self.body = body
        self.attempts = attempts
    }

    public init(_ call: Call, attempts: Int = 0) {
        let r = call.request
        self.init(
            id: call.id, function: call.function, method: r.method, url: r.url, contentType: r.contentType,
            headers: r.headers.map { [$0.0, $0.1] }, body: r.body, attempts: attempts)
    }

    /// The request to run, with the call's id.
    public var request: FunctionRequest {
        FunctionRequest(
            callID: id, method: method, url: url, contentType: contentType,
            headers: headers.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }, body: body)
    }
}
