import Logging
import OCIImage
import RunnerOS
import Sandbox
import Synchronization

/// Fn's agent on the native runtime (hot http-stream functions): calls wait on a slot queue per
/// slot key, hot containers are launched when the waiting calls outnumber idle and starting
/// containers, reused newest-first, frozen when idle, and ended after their idle timeout.
///
/// `run()` is the service that hosts every container's lifecycle; `submit` may be called from any
/// task while it runs; `shutdown()` stops taking calls and ends every container.
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    let sandbox: Sandbox
    let store: ImageStore
    let puller: ImagePuller?
    public let tracker: ResourceTracker
    /// Idle containers that may be ended to make room for another function's container.
    public let evictor = Evictor()
    let logger: Logger

    struct Launch: Sendable {
        let function: FunctionDefinition
        let queue: SlotQueue<HotSlot>
    }

    private struct State {
        var queues: [SlotKey: SlotQueue<HotSlot>] = [:]
        var launchErrors: [String: RunnerError] = [:]  // by slot key
        var shuttingDown = false
        var nextContainer = 1
    }
    private let state = Mutex(State())
    private let launches: AsyncStream<Launch>
    private let launchSink: AsyncStream<Launch>.Continuation

    public init(
        configuration: AgentConfiguration, sandbox: Sandbox, store: ImageStore, puller: ImagePuller? = nil,
        tracker: ResourceTracker, logger: Logger = Logger(label: "fnrunner.agent")
    ) {
        self.configuration = configuration
        self.sandbox = sandbox
        self.store = store
        self.puller = puller
        self.tracker = tracker
        self.logger = logger
        (launches, launchSink) = AsyncStream.makeStream(of: Launch.self)
    }

    /// Hosts the containers until `shutdown()`; returns when every container has ended.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await launch in launches {
                group.addTask { await self.runHot(launch) }
            }
        }
    }

    /// Stops taking calls; idle containers end at once, busy ones after their call.
    public func shutdown() {
        let queues = state.withLock { s -> [SlotQueue<HotSlot>] in
            s.shuttingDown = true
            return Array(s.queues.values)
        }
        launchSink.finish()
        for q in queues { while let token = q.takeNewest() { token.slot.endCall(ok: false) } }
    }

    var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    public func queue(for function: FunctionDefinition) -> SlotQueue<HotSlot> {
        let key = function.slotKey
        return state.withLock { s in
            if let q = s.queues[key] { return q }
            let q = SlotQueue<HotSlot>(key: key.value)
            s.queues[key] = q
            return q
        }
    }

    /// Runs one call on a hot container of `function`.
    public func submit(_ function: FunctionDefinition, _ request: FunctionRequest) async throws(RunnerError) -> FunctionResponse {
        if isShuttingDown { throw CallErrors.shuttingDown() }
        let memory = function.memoryMB << 20
        guard tracker.isPossible(memoryBytes: memory, cpuMillicores: function.cpuMillicores) else {
            throw CallErrors.resourceTooBig()
        }
        let queue = queue(for: function)
        queue.move(request: .none, to: .wait)
        let waitLimit = UInt64(configuration.maxWaitMillis ?? function.timeoutSeconds * 1000) * 1_000_000
        let deadline = MonotonicClock.nowNanos() + waitLimit
        var token = queue.takeNewest()
        while token == nil {
            if isShuttingDown {
                queue.move(request: .wait, to: .done)
                throw CallErrors.shuttingDown()
            }
            if let error = state.withLock({ $0.launchErrors.removeValue(forKey: queue.key) }) {
                queue.move(request: .wait, to: .done)
                throw error
            }
            if queue.claimLaunchIfNeeded() {
                launchSink.yield(Launch(function: function, queue: queue))
            }
            if MonotonicClock.nowNanos() >= deadline {
                queue.move(request: .wait, to: .done)
                throw CallErrors.serverBusy()
            }
            token = await queue.take(timeout: .milliseconds(configuration.hotPollMillis))
        }
        let slot = token!.slot
        queue.move(request: .wait, to: .exec)
        defer { queue.move(request: .exec, to: .done) }
        slot.beginCall()
        let response: FunctionResponse
        do {
            response = try await slot.hot.call(
                request, timeoutMillis: function.timeoutSeconds * 1000, maxBodyBytes: configuration.maxResponseBytes)
        } catch {
            // Any failure mid-call ends the container (its connection is unusable).
            slot.endCall(ok: false)
            if error.code == .timeout { throw CallErrors.callTimeout() }
            if error.code == .responseTooBig { throw error }
            if await slot.hot.diedOfOOM(waitingUpTo: .milliseconds(250)) { throw CallErrors.outOfMemory(function.memoryMB) }
            throw CallErrors.functionResponse(error)
        }
        switch response.status {
        case 200:
            slot.endCall(ok: true, queue: queue)
            return response
        case 502:
            slot.endCall(ok: true, queue: queue)  // the function failed, the container is fine
            throw CallErrors.functionFailed()
        case 504:
            slot.endCall(ok: true, queue: queue)
            throw CallErrors.callTimeout()
        default:
            slot.endCall(ok: false)  // outside the contract: Fn ends such containers
            throw CallErrors.invalidResponse()
        }
    }

    private func resolveImage(_ name: String) async throws(RunnerError) -> ImageRecord {
        do {
            return try store.image(name)
        } catch where error.code == .notFound && puller != nil {
            return try await puller!.pull(name)
        }
    }

    private func nextName() -> String {
        state.withLock { s in
            defer { s.nextContainer += 1 }
            return "hot\(s.nextContainer)"
        }
    }

    /// One hot container's whole life: resources, start, idle/busy cycles, freeze, end.
    func runHot(_ launch: Launch) async {
        let f = launch.function
        let queue = launch.queue
        guard let resources = await resources(for: f, key: queue.key) else {
            queue.move(container: .wait, to: .done)
            return
        }
        defer { resources.release() }
        queue.move(container: .wait, to: .start)
        let hot: HotContainer
        do {
            // The image is resolved (and pulled if missing) per container, not per call.
            let image = try await resolveImage(f.image)
            hot = try await HotContainer.launch(
                f, image: image, store: store, sandbox: sandbox, iofsRoot: configuration.iofsRoot, name: nextName(),
                readyTimeoutMillis: configuration.readyTimeoutMillis)
        } catch {
            logger.warning("a hot container did not start", metadata: ["fn": "\(f.fnID)", "error": "\(error)"])
            state.withLock { $0.launchErrors[queue.key] = error }  // goes to a caller waiting for it
            queue.move(container: .start, to: .done)
            return
        }
        queue.move(container: .start, to: .idle)
        let slot = HotSlot(hot: hot)
        await serve(slot, queue: queue, function: f)
        await hot.close()
    }

    /// Memory and CPU for a new container: at once if free; else by evicting idle containers of
    /// other functions, oldest first, when they cover the whole shortfall (then waiting for them
    /// to be gone); else by waiting for tokens until the call's wait limit.
    private func resources(for f: FunctionDefinition, key: String) async -> ResourceToken? {
        let memory = f.memoryMB << 20
        let waitLimit = Duration.milliseconds(configuration.maxWaitMillis ?? f.timeoutSeconds * 1000)
        switch tracker.tryAcquire(memoryBytes: memory, cpuMillicores: f.cpuMillicores) {
        case .success(let token):
            return token
        case .failure:
            let free = tracker.utilization
            let needMemory = memory > free.memoryAvailableBytes ? memory - free.memoryAvailableBytes : 0
            let needCPU = f.cpuMillicores > free.cpuAvailableMillicores ? f.cpuMillicores - free.cpuAvailableMillicores : 0
            let evicted = evictor.evict(for: key, neededMemoryBytes: needMemory, neededCPUMillicores: needCPU)
            if !evicted.isEmpty {
                logger.info("evicted idle containers for another function", metadata: ["count": "\(evicted.count)", "fn": "\(f.fnID)"])
            }
            return await tracker.acquire(memoryBytes: memory, cpuMillicores: f.cpuMillicores, timeout: waitLimit)
        }
    }

    /// Offers the slot until the idle timeout, a failed call, a failed freeze or shutdown.
    private func serve(_ slot: HotSlot, queue: SlotQueue<HotSlot>, function f: FunctionDefinition) async {
        var stateName: SlotQueueStats.ContainerState = .idle
        defer { queue.move(container: stateName, to: .done) }
        slot.offer(to: queue)
        while !isShuttingDown {
            guard let token = slot.token else { return }
            let idleSince = MonotonicClock.nowNanos()
            let idleDeadline = idleSince + UInt64(f.idleTimeoutSeconds) * 1_000_000_000
            let freezeAt: UInt64? = configuration.freezeIdleMillis < 0 ? nil : idleSince + UInt64(configuration.freezeIdleMillis) * 1_000_000
            var frozen = false
            var taken = false
            var evictionID = evictor.register(
                slotKey: queue.key, memoryBytes: f.memoryMB << 20, cpuMillicores: f.cpuMillicores
            ) { [slot] in
                // Evicted: take our own token first, so no call can start on a container being ended.
                if queue.acquire(token) { slot.endCall(ok: false) }
            }
            defer { if let evictionID { evictor.unregister(evictionID) } }
            while !taken {
                let now = MonotonicClock.nowNanos()
                var wake = idleDeadline
                if !frozen, let freezeAt { wake = min(wake, freezeAt) }
                let event = await slot.nextEvent(timeout: wake > now ? .nanoseconds(Int64(wake - now)) : .zero)
                if event == .taken {
                    if let id = evictionID { evictor.unregister(id) }  // a busy container is not evictable
                    evictionID = nil
                    taken = true
                    queue.move(container: stateName, to: .busy)
                    stateName = .busy
                    break
                }
                if event == .finished(ok: false) { return }  // shutdown asked us to end
                let later = MonotonicClock.nowNanos()
                if !frozen, let freezeAt, later >= freezeAt {
                    do {
                        if try slot.freezeIfIdle() {
                            frozen = true
                            queue.move(container: .idle, to: .paused)
                            stateName = .paused
                        }
                    } catch {
                        logger.warning("freezing an idle container failed; ending it", metadata: ["error": "\(error)"])
                        if queue.acquire(token) { return }
                    }
                }
                if later >= idleDeadline || isShuttingDown {
                    if queue.acquire(token) { return }  // we won the race: the container ends
                    // A call took it at the same moment: serve it.
                }
            }
            let finished = await slot.nextEvent(timeout: nil)
            guard finished == .finished(ok: true) else { return }  // a failed call ends the container
            // The caller has offered the slot again already (endCall).
            queue.move(container: .busy, to: .idle)
            stateName = .idle
        }
    }
}
