import RunnerOS

/// Memory and CPU for new containers, with eviction.
extension Agent {
    enum Acquired: Sendable {
        case granted(ResourceToken)
        /// 503: nothing fits and nothing can be evicted (non-blocking mode), or the wait limit passed.
        case refused(RunnerError)
        /// Nobody waits for the container any more.
        case noLongerWanted
    }

    /// Memory and CPU for a new container of `f`: at once if free; else, holding a place in the
    /// tracker's line from before anything is evicted (so the room freed comes to this launch, not
    /// to a later request), by evicting idle containers of other functions, oldest first, when they
    /// cover the whole shortfall (what this launch and those ahead of it in line lack, or else it
    /// alone, beyond room already on its way from earlier evictions), and waiting until they are
    /// gone; else (blocking
    /// mode) by waiting in line, looking again every FN_HOT_POLL_MSECS, until `deadline` or until
    /// `stillWanted` says no; or (non-blocking mode) 503 at once.
    func resources(
        for f: FunctionDefinition, key: String, deadline: UInt64, stillWanted: @Sendable () -> Bool
    ) async -> Acquired {
        let memory = f.memoryMB << 20
        // Granted at once when it fits in free room, as a try would be.
        let request = tracker.enqueue(memoryBytes: memory, cpuMillicores: f.cpuMillicores)
        defer { request.leave() }
        while true {
            if let token = request.take() { return .granted(token) }
            // A cancelled wait (the client left) stops at once: the waits below return
            // immediately once cancelled, and would otherwise spin until the deadline.
            if Task.isCancelled { return .refused(CallErrors.cancelled("wait for resources")) }
            let eviction = evictor.evict(for: key, tracker: tracker) { tracker.shortfalls(of: request) }
            if !eviction.evicted.isEmpty {
                metrics.countEvictions(eviction.evicted.count)
                logger.info(
                    "evicted idle containers for another function", metadata: ["count": "\(eviction.evicted.count)", "fn": "\(f.fnID)"])
            } else if !eviction.covered && configuration.nonBlockingResources {
                return .refused(CallErrors.serverBusy())
            }
            let now = clock.nowNanos
            if now >= deadline || isShuttingDown { return .refused(CallErrors.serverBusy()) }
            // Wait a poll period and look again: the evicted containers may be gone by then, or
            // one of them taken by a call first (its room then is not coming), or idle
            // containers may have become evictable. Room already on its way is never evicted
            // for twice.
            let poll = min(deadline - now, Duration.milliseconds(configuration.hotPollMillis).nanoseconds)
            if let token = await waitUnlessShutdown(request, timeout: .nanoseconds(Int64(poll))) {
                return .granted(token)
            }
            if !stillWanted() { return .noLongerWanted }
        }
    }

    /// Waits in line up to `timeout`, but no longer than until shutdown begins.
    private func waitUnlessShutdown(_ request: ResourceRequest, timeout: Duration) async -> ResourceToken? {
        let clock = self.clock
        return await withTaskGroup(of: ResourceToken?.self) { group in
            group.addTask { await request.wait(timeout: timeout, clock: clock) }
            group.addTask {
                _ = await self.shutdownBegan.wait()
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            while let other = await group.next() { other?.release() }  // a token granted as shutdown began
            if first != nil && isShuttingDown {
                first?.release()
                return nil
            }
            return first
        }
    }
}
