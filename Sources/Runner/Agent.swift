import Logging
import Tracing
import RunnerOS
import Synchronization

/// Fn's agent on a container driver: calls of hot formats wait on a slot queue per slot key,
/// hot containers are launched when the waiting calls outnumber idle and starting containers,
/// reused newest-first, frozen when idle, and ended after their idle timeout; calls of the cold
/// `default` format get a container each.
///
/// `run()` is the service that hosts every container's lifecycle; `makeCall`/`submit` may be
/// called from any task while it runs; `shutdown()` stops taking calls, lets running ones finish
/// (bounded), and ends every container.
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    public let driver: any ContainerDriver
    public let tracker: ResourceTracker
    /// Idle containers that may be ended to make room for another function's container.
    public let evictor = Evictor()
    /// Counters and latency histograms for `/metrics`.
    public let metrics = AgentMetrics()
    let clock: any AgentClock
    let logger: Logger
    /// Set when the node traces: every call gets a span (see `CallTrace`); nil costs nothing.
    public let tracer: (any Tracer)?

    struct Launch: Sendable {
        let function: FunctionDefinition
        let queue: SlotQueue<HotSlot>
        /// The call whose wait asked for this container.
        let callerID: String
        /// That wait: a launch error goes to it alone, and only while it still waits (a call
        /// that left, or a retried detached call with the same id, never gets a stale one).
        let wait: UInt64
        /// Started ahead of demand (the fn's prewarm target), not for a waiting call.
        var prewarm = false
        /// The asking call's trace, which the start becomes a span of.
        var trace: CallTrace?
    }

    struct State {
        var queues: [SlotKey: SlotQueue<HotSlot>] = [:]
        /// When the launcher sweep first saw a queue idle, and its activity count then.
        var idleSince: [SlotKey: (nanos: UInt64, activity: UInt64)] = [:]
        var launchErrors: [UInt64: RunnerError] = [:]  // by wait, for waits still going on
        var waits: Set<UInt64> = []
        var nextWait: UInt64 = 1
        var listeners: [any CallListener] = []
        var live: [String: (slot: HotSlot, fnID: String)] = [:]  // by container name
        /// Fns that keep instances ahead of demand, by fn id (see Agent+Prewarm).
        var prewarm: [String: FunctionDefinition] = [:]
        var shuttingDown = false
        var running = 0
        var nextContainer = 1

        /// The slot queue of `key`, made if there is none yet.
        mutating func queue(for key: SlotKey) -> SlotQueue<HotSlot> {
            if let existing = queues[key] { return existing }
            let made = SlotQueue<HotSlot>(key: key.value)
            queues[key] = made
            return made
        }
    }
    let state = Mutex(State())
    /// Sync calls waiting for a container or resources: while there are any, detached calls
    /// are not started (sync calls keep priority).
    private let syncCallsWaiting = Atomic<Int>(0)
    let shutdownBegan = AsyncEvent()
    let drained = AsyncEvent()
    private let launches: AsyncStream<Launch>
    let launchSink: AsyncStream<Launch>.Continuation

    public init(
        configuration: AgentConfiguration, driver: any ContainerDriver, tracker: ResourceTracker,
        clock: any AgentClock = SystemClock(), logger: Logger = Logger(label: "fnrunner.agent"), tracer: (any Tracer)? = nil
    ) {
        self.tracer = tracer
        self.configuration = configuration
        self.driver = driver
        self.tracker = tracker
        self.clock = clock
        self.logger = logger
        (launches, launchSink) = AsyncStream.makeStream(of: Launch.self)
    }

    /// Hosts the containers until `shutdown()`; returns when every container has ended. When its
    /// task is cancelled instead, it starts nothing more and ends each container once no call has
    /// it (an idle one at once; a busy one may first serve calls already waiting for a container),
    /// then returns.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.sweepIdleQueues() }
            group.addTask { await self.keepPrewarmTargets() }
            for await launch in launches {
                group.addTask { await self.runHot(launch) }
            }
        }
    }

    /// Adds a listener that sees every call from now on.
    public func addListener(_ listener: any CallListener) {
        state.withLock { $0.listeners.append(listener) }
    }

    public var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// Calls running on containers now (Fn's "active" in a pure runner's status).
    public var runningCount: Int { state.withLock { $0.running } }

    /// Stops taking calls (waiting ones get 503), waits up to `shutdownGraceMillis` for running
    /// calls, then ends every container; `run()` returns once they are gone.
    public func shutdown() async {
        let queues = state.withLock { s -> [SlotQueue<HotSlot>] in
            s.shuttingDown = true
            s.prewarm = [:]
            return Array(s.queues.values)
        }
        shutdownBegan.fire()
        launchSink.finish()
        for q in queues {
            q.wakeWaiters()
            while let token = q.takeNewest() { token.slot.retire() }  // idle containers end now
        }
        if state.withLock({ $0.running == 0 }) { drained.fire() }
        if let grace = AgentConfiguration.duration(configuration.shutdownGraceMillis) {
            _ = await raceWithTimeout(grace, clock: clock, { await self.drained.wait() })
        } else {
            _ = await drained.wait()
        }
        // A call that ended meanwhile offered its container again, and that container's task
        // sleeps until its idle timer (a good call's end wakes nobody): it ends now too.
        for q in queues {
            while let token = q.takeNewest() { token.slot.retire() }
        }
        // Calls still running after the grace period end with their containers.
        let busy = state.withLock { $0.live.values.map(\.slot).filter(\.isBusy).map(\.hot) }
        if !busy.isEmpty {
            logger.warning("ending containers whose calls outlived the shutdown grace period", metadata: ["count": "\(busy.count)"])
        }
        await withDiscardingTaskGroup { group in
            for handle in busy { group.addTask { await handle.close() } }
        }
        await driver.shutdown()
    }

    /// The slot queue of the call's function, counting one more waiting call in it, in one step with the
    /// lookup, so the launcher sweep never drops a queue a call is about to wait on.
    func enterQueue(for call: Call) throws(RunnerError) -> SlotQueue<HotSlot> {
        let key = call.slotKey
        return try state.withLock { s throws(RunnerError) -> SlotQueue<HotSlot> in
            if s.shuttingDown { throw CallErrors.shuttingDown() }
            let q = s.queue(for: key)
            q.move(request: .none, to: .wait)
            return q
        }
    }

    /// The queue for `function`'s slot key, if one exists now (for statistics).
    public func existingQueue(for function: FunctionDefinition) -> SlotQueue<HotSlot>? {
        state.withLock { $0.queues[function.slotKey] }
    }

    /// The agent's state in words, for diagnostics: queues with their counts, running calls,
    /// live containers, pending launch errors.
    public var stateDescription: String {
        state.withLock { s in
            var lines = ["running=\(s.running) live=\(s.live.count) launchErrors=\(s.launchErrors.count) shuttingDown=\(s.shuttingDown)"]
            for q in s.queues.values {
                let st = q.stats
                lines.append(
                    "queue wait=\(st.count(SlotQueueStats.RequestState.wait)) exec=\(st.count(SlotQueueStats.RequestState.exec)) "
                        + SlotQueueStats.ContainerState.allCases.map { "\($0)=\(st.count($0))" }.joined(separator: " ") + " " + q.lineDescription)
            }
            return lines.joined(separator: "\n")
        }
    }

    /// The hot containers alive now, oldest name first.
    public var containers: [ContainerInfo] {
        let live = state.withLock { Array($0.live.values) }
        return live.map { $0.slot.info(function: $0.fnID) }.sorted { $0.name.count != $1.name.count ? $0.name.count < $1.name.count : $0.name < $1.name }
    }

    /// Containers by state over every slot queue (none and done are not counted).
    public var containerCounts: [SlotQueueStats.ContainerState: Int] {
        let queues = state.withLock { Array($0.queues.values) }
        var out: [SlotQueueStats.ContainerState: Int] = [:]
        for q in queues {
            let st = q.stats
            for c in SlotQueueStats.ContainerState.allCases where c != .none && c != .done { out[c, default: 0] += st.count(c) }
        }
        return out
    }

    /// How many slot queues exist.
    public var queueCount: Int { state.withLock { $0.queues.count } }

    /// Drops slot queues that had no calls and no containers for max(FN_HOT_LAUNCHER_TIMEOUT_MSECS,
    /// 2 × idle timeout); checks four times per launcher timeout, until shutdown.
    func sweepIdleQueues() async {
        guard let timeout = AgentConfiguration.duration(configuration.hotLauncherTimeoutMillis) else { return }
        let interval = max(timeout / 4, .milliseconds(1))
        // A cancelled task's waits return at once: it stops instead of spinning.
        while !shutdownBegan.hasFired && !Task.isCancelled {
            _ = await raceWithTimeout(interval, clock: clock, { await self.shutdownBegan.wait() })
            let now = clock.nowNanos
            state.withLock { s in
                for (key, q) in s.queues {
                    let (idle, activity) = q.idleness
                    guard idle else {
                        s.idleSince[key] = nil
                        continue
                    }
                    guard let seen = s.idleSince[key], seen.activity == activity else {
                        s.idleSince[key] = (now, activity)
                        continue
                    }
                    let limit = max(timeout.nanoseconds, 2 * UInt64(max(0, key.idleTimeoutSeconds)) * 1_000_000_000)
                    if now &- seen.nanos >= limit {
                        s.queues[key] = nil
                        s.idleSince[key] = nil
                    }
                }
            }
        }
    }

    // MARK: - calls

    /// Fn's GetCall: a call of `function` for `request`, with an id (the request's, or a new
    /// one). Refuses, before anything waits, what this node can never run. With a `stream`,
    /// an http-stream answer is passed on as it arrives; `slotKey` replaces the function's own
    /// (Fn's LB may choose it); `onStart` runs when the call starts.
    public func makeCall(
        _ function: FunctionDefinition, _ request: FunctionRequest, type: String = Call.sync, stream: ResponseStream? = nil,
        slotKey: SlotKey? = nil, onStart: (@Sendable () async -> Void)? = nil, traceParent: CallTrace.Parent = .current
    ) throws(RunnerError) -> Call {
        guard FunctionFormat(rawValue: function.format) != nil else { throw CallErrors.unknownFormat(function.format) }
        guard tracker.isPossible(memoryBytes: function.memoryMB << 20, cpuMillicores: function.cpuMillicores) else {
            throw CallErrors.resourceTooBig()
        }
        // An edge's call id and Content-Type go into the function's request head.
        if request.headHasLineBreak {
            throw RunnerError(.invalidArgument, "the call id or Content-Type holds a line break", step: "make call")
        }
        let id = request.callID.isEmpty ? CallID.make() : request.callID
        let trace = tracer.flatMap { tracer in
            CallTrace.parentContext(traceParent, tracer: tracer, request: request).map {
                CallTrace(tracer: tracer, parent: $0, call: id, function: function)
            }
        }
        return Call(
            id: id, function: function, request: request, type: type, logLimit: configuration.maxLogBytes, stream: stream,
            slotKey: slotKey, onStart: onStart, trace: trace)
    }

    /// Makes and runs a call in one step.
    public func submit(_ function: FunctionDefinition, _ request: FunctionRequest) async throws(RunnerError) -> FunctionResponse {
        try await submit(try makeCall(function, request))
    }

    /// Fn's Submit: waits for a container, starts the call (listeners), runs it, ends it
    /// (record, listeners) and returns the function's response or the call's error.
    public func submit(_ call: Call) async throws(RunnerError) -> FunctionResponse {
        if isShuttingDown {
            let refused = CallErrors.shuttingDown()
            call.trace?.end(status: CallRecord.Status.error.rawValue, error: refused)
            throw refused
        }
        if call.type != Call.detached { syncCallsWaiting.add(1, ordering: .relaxed) }
        defer { stoppedWaiting(call) }
        let result: Result<FunctionResponse, RunnerError>
        do {
            if call.function.format == FunctionFormat.cold.rawValue {
                result = .success(try await submitCold(call))
            } else {
                result = .success(try await submitHot(call))
            }
        } catch {
            result = .failure(error)
        }
        if case .failure(let e) = result, call.status == .queued {
            // Never started (busy, shutdown, launch failure, client gone): still a call that
            // ended, and the listeners (the store among them) hear of it.
            call.markEnded(e, startedWallNanos: nil, stats: nil)
            metrics.observeCall(fnID: call.function.fnID, status: call.status.rawValue, waitSeconds: nil, executionSeconds: nil)
            for listener in state.withLock({ $0.listeners }) { try? await listener.afterCall(call) }
        }
        call.trace?.end(status: call.status.rawValue, error: result.failure)
        return try result.get()
    }

    /// Fn's call.Start: the record says running, and every listener's `beforeCall` passes.
    func start(_ call: Call) async throws(RunnerError) -> UInt64 {
        stoppedWaiting(call)
        let started = call.markStarted()
        for listener in state.withLock({ $0.listeners }) {
            do {
                try await listener.beforeCall(call)
            } catch {
                call.markEnded(error, startedWallNanos: started, stats: nil)
                throw error
            }
        }
        await call.onStart?()
        return started
    }

    /// Fn's call.End: the record gets its end, result and stats, then every listener's
    /// `afterCall` runs; an error from one replaces a successful result.
    func end(_ call: Call, started: UInt64, stats: CallStats?, _ result: Result<FunctionResponse, RunnerError>)
        async throws(RunnerError) -> FunctionResponse
    {
        var result = result
        if case .failure(let e) = result {
            call.markEnded(e, startedWallNanos: started, stats: stats)
        } else {
            call.markEnded(nil, startedWallNanos: started, stats: stats)
        }
        let t = call.wallTimes
        metrics.observeCall(
            fnID: call.function.fnID, status: call.status.rawValue, waitSeconds: Double(started &- min(t.created, started)) / 1e9,
            executionSeconds: t.completed.map { Double($0 &- min(started, $0)) / 1e9 }, stats: stats)
        for listener in state.withLock({ $0.listeners }) {
            do {
                try await listener.afterCall(call)
            } catch {
                call.replaceError(error)
                result = .failure(error)
            }
        }
        return try result.get()
    }

    /// Whether a sync call is waiting for a container or resources now.
    public var hasWaitingSyncCalls: Bool { syncCallsWaiting.load(ordering: .relaxed) > 0 }

    private func stoppedWaiting(_ call: Call) {
        if call.type != Call.detached && !call.leftWait.exchange(true, ordering: .relaxed) {
            syncCallsWaiting.subtract(1, ordering: .relaxed)
        }
    }

    /// Counts a call as running (shutdown waits for it); false once shutdown began.
    func enterRunning() -> Bool {
        state.withLock { s in
            if s.shuttingDown { return false }
            s.running += 1
            return true
        }
    }

    func leaveRunning() {
        let last = state.withLock { s -> Bool in
            s.running -= 1
            return s.running == 0 && s.shuttingDown
        }
        if last { drained.fire() }
    }

    func nextContainerName(_ f: FunctionDefinition) -> String {
        state.withLock { s in
            defer { s.nextContainer += 1 }
            return "\(f.format == FunctionFormat.cold.rawValue ? "cold" : "hot")\(s.nextContainer)"
        }
    }

    /// How long a call may wait for a container or resources.
    func waitLimit(_ f: FunctionDefinition) -> Duration {
        .milliseconds(configuration.maxWaitMillis ?? max(0, f.timeoutSeconds) * 1000)
    }
}

/// The function formats: how input reaches a function and its answer comes back.
public enum FunctionFormat: String, Sendable, CaseIterable {
    /// HTTP/1.1 over a unix socket the FDK creates in /tmp/iofs (every current FDK).
    case httpStream = "http-stream"
    /// One container per call; body on stdin, answer on stdout, request data in env vars.
    case cold = "default"
    /// Hot; HTTP/1.1 request and response over stdin and stdout.
    case http
    /// Hot; one JSON object per call each way over stdin and stdout.
    case json
}
