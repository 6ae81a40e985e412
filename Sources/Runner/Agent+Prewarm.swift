import RunnerOS

/// Instances started ahead of demand: a fn whose `fnrunner.io/prewarm` annotation says N keeps
/// N containers idle (and, after the freeze delay, frozen), so a first call is a thaw instead of
/// a cold start.
///
/// They are ordinary hot containers of the fn's slot key: they take memory and CPU tokens as
/// any container does, serve calls, freeze and thaw. What differs: a launch for them never
/// waits for resources nor evicts (no room now means none started, and the next top-up tries
/// again), they outlive the idle timeout while no more than N of the key are idle, and the
/// evictor ends them before any other idle container while they were never used.
extension Agent {
    /// Declares `f`'s prewarm target (its annotation; 0 withdraws it) and starts what is
    /// missing. A new definition of the fn replaces the old one: idle instances made for the
    /// old one end now.
    public func prewarm(_ f: FunctionDefinition) {
        let count = f.prewarmCount
        let old = state.withLock { s -> FunctionDefinition? in
            let old = s.prewarm[f.fnID]
            s.prewarm[f.fnID] = count > 0 && !s.shuttingDown ? f : nil
            return old
        }
        if let old, old.slotKey != f.slotKey { endIdleContainers(of: old.slotKey) }
        if count > 0 { topUpPrewarm(fnID: f.fnID) }
    }

    /// The fn is gone: no more instances ahead of demand, and the idle ones end now.
    public func stopPrewarming(fnID: String) {
        guard let old = state.withLock({ $0.prewarm.removeValue(forKey: fnID) }) else { return }
        endIdleContainers(of: old.slotKey)
    }

    /// The prewarm target of the fn of `call`, if it has one for the call's definition. Asked
    /// on every hot call: a definition without the annotation (nearly all) is answered without
    /// the agent's lock.
    func prewarmTarget(for f: FunctionDefinition) -> Int? {
        guard f.prewarmCount > 0 else { return nil }
        return state.withLock { s in
            guard let target = s.prewarm[f.fnID], target.slotKey == f.slotKey else { return nil }
            return target.prewarmCount
        }
    }

    /// Whether an idle container of `key` is one the fn keeps ahead of demand now: it then
    /// outlives its idle timeout (the extra ones, beyond the target, still end).
    func keepsAheadOfDemand(_ queue: SlotQueue<HotSlot>, fnID: String) -> Bool {
        let target = state.withLock { s -> Int? in
            guard let f = s.prewarm[fnID], f.slotKey.value == queue.key else { return nil }
            return f.prewarmCount
        }
        guard let target else { return false }
        return queue.idleCount <= target
    }

    /// Launches what the fn's target lacks (idle, frozen and starting containers count).
    func topUpPrewarm(fnID: String) {
        let launch = state.withLock { s -> (FunctionDefinition, SlotQueue<HotSlot>)? in
            guard !s.shuttingDown, let f = s.prewarm[fnID] else { return nil }
            return (f, s.queue(for: f.slotKey))
        }
        guard let (f, queue) = launch else { return }
        let more = queue.claimLaunches(keeping: f.prewarmCount)
        for _ in 0..<more {
            launchSink.yield(Launch(function: f, queue: queue, callerID: "", wait: 0, prewarm: true))
        }
    }

    /// Tops up every target now and then: after a prewarm launch found no room, or an
    /// instance was taken, evicted or ended.
    func keepPrewarmTargets() async {
        let interval = Duration.milliseconds(max(configuration.hotPollMillis, 1000))
        while !shutdownBegan.hasFired && !Task.isCancelled {  // a cancelled task's waits return at once
            _ = await raceWithTimeout(interval, clock: clock, { await self.shutdownBegan.wait() })
            for fnID in state.withLock({ Array($0.prewarm.keys) }) { topUpPrewarm(fnID: fnID) }
        }
    }

    /// Ends the idle containers of `key` now (a fn changed or went away).
    private func endIdleContainers(of key: SlotKey) {
        let slots = state.withLock { s in s.live.values.map(\.slot).filter { $0.queue.key == key.value } }
        var ended = 0
        for slot in slots where slot.endIfIdle() { ended += 1 }
        if ended > 0 { logger.info("ended idle containers of a fn that changed", metadata: ["count": "\(ended)"]) }
    }
}
