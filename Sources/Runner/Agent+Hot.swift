import Logging
import Tracing
import RunnerOS

/// Hot calls: waiting for a slot, running on it, and each hot container's whole life.
extension Agent {
    func submitHot(_ call: Call) async throws(RunnerError) -> FunctionResponse {
        let queue = try enterQueue(for: call)
        let waitBegan = call.trace == nil ? 0 : MonotonicClock.nowNanos()
        // One wait limit for the call, however many containers it has to pass over.
        let deadline = clock.nanos(after: waitLimit(call.function))
        let slot: HotSlot
        var waited = false
        var took: UInt64 = 0
        while true {
            let token: SlotToken<HotSlot>
            do {
                token = try await waitForSlot(queue, call: call, deadline: deadline, waited: &waited)
            } catch {
                queue.move(request: .wait, to: .done)
                throw error
            }
            // Fn unfreezes at acquisition: a container that cannot be thawed (or whose process
            // ended) is ended (a runner fault, never the function's), and the call waits for
            // another one.
            do {
                if call.trace != nil { took = MonotonicClock.nowNanos() }
                try await thaw(token.slot, for: call)
                slot = token.slot
                break
            } catch {
                // The slot ended the container when its thaw (or the freeze it waited for) failed,
                // or when its process ended.
                logger.warning(
                    "a container the call took could not be made ready (a failed thaw or freeze, or it exited); it ends, the call waits",
                    metadata: call.function.logMetadata(container: token.slot.name).merging(["error": "\(error)"]) { $1 })
            }
        }
        call.trace?.phase("queue wait", from: waitBegan, to: took, attributes: ["fn.waited_for_start": .bool(waited)])
        queue.move(request: .wait, to: .exec)
        defer { queue.move(request: .exec, to: .done) }
        slot.beginCall(id: call.id, trace: call.trace)
        let prewarmed = prewarmTarget(for: call.function) != nil
        // A hit found an instance ready; a miss had to wait for one.
        if prewarmed { metrics.countPrewarm(hit: !waited) }
        // The target is made whole once the call has ended (its container is usually idle
        // again by then): a start running beside the call would slow it on a small node.
        defer { if prewarmed { topUpPrewarm(fnID: call.function.fnID) } }
        guard enterRunning() else {
            slot.endCall(ok: false)
            throw CallErrors.shuttingDown()
        }
        defer { leaveRunning() }
        if Task.isCancelled {
            slot.endCall(ok: true)  // the client left before its request was sent: the container stays
            throw CallErrors.cancelled("wait for container")
        }
        let started: UInt64
        do {
            started = try await start(call)
        } catch {
            slot.endCall(ok: true)  // the call never reached the container: it stays
            throw error
        }
        let (result, stats) = await exec(call, on: slot)
        return try await end(call, started: started, stats: stats, result)
    }

    /// Claims the container a call took and thaws it if its lifecycle says it is frozen (once
    /// a freeze in progress has ended); a traced call gets a `thaw` span, also for a thaw that
    /// failed. A failed thaw, a failed freeze the call waited for, or the container's process
    /// ending meanwhile has ended the container when it is thrown.
    private func thaw(_ slot: HotSlot, for call: Call) async throws(RunnerError) {
        switch await slot.claim() {
        case .ready: return
        case .lost:
            throw RunnerError(.invalidState, "the container ended (a failed freeze, or its process exited) before the call", step: "claim")
        case .thaw: break
        }
        let began = MonotonicClock.nowNanos()
        var failed = true
        defer {
            call.trace?.phase("thaw", from: began, to: MonotonicClock.nowNanos(), attributes: ["fn.container": .string(slot.name)], failed: failed)
        }
        do {
            try await slot.hot.thaw()
        } catch {
            slot.thawEnded(ok: false)
            throw error
        }
        failed = false
        guard slot.thawEnded(ok: true) else {
            throw RunnerError(.invalidState, "the container's process ended while it was thawed for the call", step: "thaw")
        }
    }

    /// Waits for a free container of the call's queue, asking for a launch whenever the waiting
    /// calls need one, every FN_HOT_POLL_MSECS, until the wait limit (503), shutdown (503) or a
    /// failed launch this call asked for (its error).
    private func waitForSlot(
        _ queue: SlotQueue<HotSlot>, call: Call, deadline: UInt64, waited: inout Bool
    ) async throws(RunnerError) -> SlotToken<HotSlot> {
        let wait = state.withLock { s -> UInt64 in
            defer { s.nextWait += 1 }
            s.waits.insert(s.nextWait)
            return s.nextWait
        }
        defer {
            state.withLock {
                $0.waits.remove(wait)
                _ = $0.launchErrors.removeValue(forKey: wait)
            }
        }
        // On a node with several event loops, a container whose answers wake the caller's loop.
        let local: (HotSlot) -> Bool = { $0.hot.isLocalToCaller }
        var token = queue.takeNewest(preferring: local)
        while token == nil {
            if isShuttingDown { throw CallErrors.shuttingDown() }
            if Task.isCancelled { throw CallErrors.cancelled("wait for container") }
            if let error = state.withLock({ $0.launchErrors.removeValue(forKey: wait) }) { throw error }
            waited = true
            let now = clock.nowNanos
            if now >= deadline { throw CallErrors.serverBusy() }
            let poll = min(Duration.milliseconds(configuration.hotPollMillis), .nanoseconds(Int64(deadline - now)))
            // The launch is asked for from inside the queue's line, so the container it starts
            // goes to a waiting call (this one, or one ahead of it) however soon it is ready.
            token = await queue.take(
                timeout: poll, clock: clock,
                inLine: {
                    if queue.claimLaunchIfNeeded() {
                        launchSink.yield(Launch(function: call.function, queue: queue, callerID: call.id, wait: wait, trace: call.trace))
                    }
                }, preferring: local)
        }
        return token!
    }

    /// Runs the call on the container, and measures it before the container is released (an
    /// idle container may be frozen at once, and the call must not wait for that); ends the
    /// container when the call broke it.
    private func exec(_ call: Call, on slot: HotSlot) async -> (Result<FunctionResponse, RunnerError>, CallStats) {
        let (result, keep) = await run(call, on: slot)
        let after = slot.hot.callCounters()
        let history = slot.history
        slot.recordCounters(after)
        let stats = CallStats(before: history.counters, after: after, reusedContainer: history.reused, container: slot.name)
        slot.endCall(ok: keep)
        return (result, stats)
    }

    /// The call itself, and whether the container may serve another.
    private func run(_ call: Call, on slot: HotSlot) async -> (Result<FunctionResponse, RunnerError>, keep: Bool) {
        let f = call.function
        var request = call.request
        let timeout = Duration.seconds(max(0, f.timeoutSeconds))
        request.deadline = WallClock.rfc3339(WallClock.nowNanos() &+ timeout.nanoseconds, millis: false)
        let span = call.trace?.startFunction(container: slot.name, headers: &request.headers)
        defer { if let span { call.trace?.finish(span) } }
        let response: FunctionResponse
        do {
            response = try await slot.hot.call(
                request, timeout: timeout, maxBodyBytes: configuration.maxResponseBytes, log: call.log, stream: call.responseStream)
            span?.attributes["http.response.status_code"] = response.status
        } catch {
            span?.setStatus(SpanStatus(code: .error, message: error.message))
            // Any failure mid-call ends the container: its connection or pipes are unusable.
            if error.code == .timeout { return (.failure(CallErrors.callTimeout()), false) }
            if error.code == .callCancelled { return (.failure(error), false) }
            if error.code == .responseTooBig || error.code == .functionInvalidResponse { return (.failure(error), false) }
            if await slot.hot.diedOfOOM(waitingUpTo: .milliseconds(250)) {
                logger.warning(
                    "a container ran out of memory",
                    metadata: f.logMetadata(container: slot.name).merging(["call_id": "\(call.id)", "memory_mb": "\(f.memoryMB)"]) { $1 })
                return (.failure(CallErrors.outOfMemory(f.memoryMB)), false)
            }
            return (.failure(CallErrors.functionResponse(error)), false)
        }
        var clean = response
        clean.headers.removeAll { HopByHop.names.contains($0.name) }  // names arrive in lower case
        if f.format == FunctionFormat.http.rawValue || f.format == FunctionFormat.json.rawValue {
            // The stdio formats carry the function's own status: every parsed final status is one.
            guard (200...999).contains(response.status) else { return (.failure(CallErrors.invalidResponse()), false) }
            return (.success(clean), !response.endsContainer)
        }
        switch response.status {
        case 200: return (.success(clean), !response.endsContainer)  // a body ended by close ends it
        case 502: return (.failure(CallErrors.functionFailed()), true)  // the function failed, the container is fine
        case 504: return (.failure(CallErrors.callTimeout()), true)
        default: return (.failure(CallErrors.invalidResponse()), false)  // outside the contract: Fn ends such containers
        }
    }

    /// Hands a failed launch's error to the wait that asked for it, if that wait goes on.
    private func report(_ error: RunnerError, to launch: Launch) {
        state.withLock { s in
            if s.waits.contains(launch.wait) { s.launchErrors[launch.wait] = error }
        }
    }

    /// One hot container's whole life: resources, start, idle/busy cycles, freeze, end.
    func runHot(_ launch: Launch) async {
        let f = launch.function
        let queue = launch.queue
        let acquired: Acquired
        if launch.prewarm {
            // Ahead of demand: only room that is free now and that no call's launch waits for in
            // the tracker's line, never a wait or an eviction.
            switch tracker.tryAcquireSpare(memoryBytes: f.memoryMB << 20, cpuMillicores: f.cpuMillicores) {
            case .success(let t): acquired = .granted(t)
            case .failure: acquired = .noLongerWanted
            }
        } else {
            acquired = await resources(for: f, key: queue.key, deadline: clock.nanos(after: waitLimit(f))) {
                queue.stats.count(SlotQueueStats.RequestState.wait) > 0
            }
        }
        let token: ResourceToken
        switch acquired {
        case .granted(let t):
            token = t
        case .refused(let error):
            report(error, to: launch)
            queue.move(container: .wait, to: .done)
            queue.wakeWaiters()  // the caller learns it now; the others look again
            return
        case .noLongerWanted:
            queue.move(container: .wait, to: .done)
            return
        }
        defer { token.release() }
        queue.move(container: .wait, to: .start)
        let name = nextContainerName(f)
        var task = ContainerTask(
            function: f, name: name, spawnCallID: launch.callerID,
            startTimeout: .milliseconds(max(0, configuration.hotStartTimeoutMillis)), timeout: .seconds(max(0, f.timeoutSeconds)))
        task.maxResponseHeaderBytes = configuration.maxResponseHeaderBytes
        let metrics = self.metrics
        let thawMetadata = f.logMetadata(container: name)
        task.onThaw = { [logger] seconds in
            metrics.observeThaw(seconds: seconds)
            logger.debug("thawed a container for a call", metadata: thawMetadata.merging(["thaw_ms": "\(TimedPhase.millisText(seconds))"]) { $1 })
        }
        if f.freezeReclaim ?? configuration.freezeReclaim { task.onReclaim = { metrics.observeReclaim(freedBytes: $0) } }
        task.onPull = { metrics.observePull(seconds: $0) }
        task.onStartPhases = { metrics.observeStartPhases($0) }
        task.trace = launch.trace
        let hot: any HotContainerHandle
        let startedAt = MonotonicClock.nowNanos()
        do {
            hot = try await driver.startHot(task)
            metrics.observeContainerStart(seconds: Double(MonotonicClock.nowNanos() - startedAt) / 1e9)
        } catch {
            metrics.countLaunchFailure()
            logger.warning(
                "a hot container did not start", metadata: f.logMetadata(container: name).merging(["error": "\(error)"]) { $1 })
            let reported: RunnerError =
                switch error.code {
                case .containerInit: CallErrors.containerInit()
                case .containerInitTimeout: CallErrors.containerInitTimeout()
                default: error
                }
            report(reported, to: launch)
            queue.move(container: .start, to: .done)
            queue.wakeWaiters()
            return
        }
        let slot = HotSlot(
            hot: hot, name: name, queue: queue, evictor: evictor, resources: token, clock: clock, metrics: metrics, prewarmed: launch.prewarm,
            logger: logger, logMetadata: f.logMetadata(container: name))
        hot.onExit { [weak slot] in slot?.containerExited() }
        let registered = state.withLock { s -> Bool in
            if s.shuttingDown { return false }
            s.live[name] = (slot, f.fnID)
            return true
        }
        if registered {
            await serve(slot, function: f)
            state.withLock { _ = $0.live.removeValue(forKey: name) }
        } else {
            slot.markDone()
        }
        await hot.close()
        // An instance kept ahead of demand that was evicted or failed is replaced (when there is
        // room: a prewarm launch never waits or evicts).
        if prewarmTarget(for: f) != nil { topUpPrewarm(fnID: f.fnID) }
    }

    /// Offers the slot until the idle timeout, a failed call, a failed freeze, eviction or
    /// shutdown. Each idle period restarts the idle timer and the freeze timer.
    ///
    /// Calls do not wake this task: a good call's end opens a new idle period in the slot, which
    /// this task reads when its timer fires, and it sets the timer again from that period's
    /// start. Under steady traffic it wakes once per freeze delay, not once per call. It waits
    /// for a call's end only when a timer finds a call on the container, when a call took the
    /// container as it was about to end, and once this period's freeze is behind it. Failures,
    /// eviction and shutdown wake it at once.
    private func serve(_ slot: HotSlot, function f: FunctionDefinition) async {
        defer { slot.markDone() }
        let idleTimeout = UInt64(max(0, f.idleTimeoutSeconds)) * 1_000_000_000
        let freezeAfter = AgentConfiguration.duration(f.freezeIdleMillis ?? configuration.freezeIdleMillis)?.nanoseconds
        slot.offer()
        var period = slot.idleness
        idlePeriods: while !isShuttingDown {
            let idleSince = period.since
            var idleDeadline = idleSince &+ idleTimeout
            let freezeAt = freezeAfter.map { idleSince &+ $0 }
            var frozen = false
            while true {
                // The agent's run was cancelled (its owner stops it now, without a shutdown): the
                // container ends once no call has it. Waits of a cancelled task return at once,
                // so without this the loop would spin until the idle deadline.
                if Task.isCancelled {
                    let seen = slot.idleness.period
                    if slot.endIfIdle() { return }
                    if await slot.nextEvent(until: nil, callEndAfter: seen, cancellable: false) == .finished(ok: false) {
                        return
                    }
                    period = slot.idleness
                    continue idlePeriods
                }
                var wake = idleDeadline
                if !frozen, let freezeAt { wake = min(wake, freezeAt) }
                // Once the freeze of this period is behind it (done, failed, or lost to a call),
                // no timer of this task falls between a call's end and the next freeze: it
                // hears that end (after a thaw, a wake-up costs little).
                switch await slot.nextEvent(until: wake, callEndAfter: frozen ? period.period : nil) {
                case .finished(ok: false)?: return  // a failed call, eviction, or shutdown asked us to end
                case .finished(ok: true)?, nil: break
                }
                var now = slot.idleness
                if now.hasCall {
                    // A timer came while a call has the container: no freeze, no idle end; its
                    // end is the next event.
                    switch await slot.nextEvent(until: nil, callEndAfter: now.period) {
                    case .finished(ok: false)?: return
                    case .finished(ok: true)?: now = slot.idleness
                    case nil: continue  // cancelled: handled above
                    }
                }
                if now.period != period.period {
                    period = now  // calls came and went: the timers start again from the last one's end
                    continue idlePeriods
                }
                let later = clock.nowNanos
                if !frozen, let freezeAt, later >= freezeAt {
                    do {
                        // Tried once per idle period: false means a call has it (it is about to
                        // begin), and trying again before that call's end would only spin.
                        if try await slot.freezeIfIdle(period: now.period) { logger.debug("froze an idle container", metadata: f.logMetadata(container: slot.name)) }
                        frozen = true
                    } catch {
                        logger.warning(
                            "freezing an idle container failed; ending it",
                            metadata: f.logMetadata(container: slot.name).merging(["error": "\(error)"]) { $1 })
                        if slot.endIfIdle() { return }
                        frozen = true  // a call took it meanwhile: serve that call, do not try again
                    }
                }
                if later >= idleDeadline && !isShuttingDown && keepsAheadOfDemand(slot.queue, fnID: f.fnID) {
                    idleDeadline = later &+ idleTimeout  // one of the fn's prewarmed idle instances: it stays
                } else if later >= idleDeadline || isShuttingDown {
                    if slot.endIfIdle(period: now.period) { return }  // we won the race: the container ends
                    // A call took it at the same moment (or came and went): serve it, and start
                    // again from its end. Until it claims the container, a timer would only spin.
                    switch await slot.nextEvent(until: nil, callEndAfter: now.period) {
                    case .finished(ok: false)?: return
                    case .finished(ok: true)?:
                        period = slot.idleness
                        continue idlePeriods
                    case nil: continue  // cancelled: handled above
                    }
                }
            }
        }
    }
}
