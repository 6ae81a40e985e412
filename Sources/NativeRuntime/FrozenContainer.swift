import Runner
import CgroupDriver
import RunnerOS
import Sandbox
import Synchronization

/// What every hot container handle does the same way, whatever its wire format: freezes when
/// idle, thaws (timed) before a call, reads its call counters, tells whether it died of OOM.
final class FrozenContainer: Sendable {
    let container: Container
    private let counters: CgroupStatsReader
    private let onThaw: (@Sendable (Double) -> Void)?
    private let onReclaim: (@Sendable (_ freedBytes: UInt64) -> Void)?
    private let frozen = Mutex(false)

    /// `throttling`: read the CPU throttling counters too (worth it only under a CPU quota).
    /// `onReclaim`: reclaim the container's memory after each freeze, and report it.
    init(
        _ container: Container, throttling: Bool, onThaw: (@Sendable (Double) -> Void)?,
        onReclaim: (@Sendable (_ freedBytes: UInt64) -> Void)? = nil
    ) {
        self.container = container
        counters = container.statsReader(throttling: throttling)
        self.onThaw = onThaw
        self.onReclaim = onReclaim
    }

    var isFrozen: Bool { frozen.withLock { $0 } }

    /// Freezes the idle container (a failed freeze means the container must be ended).
    func freeze() throws(RunnerError) {
        try container.freeze()
        frozen.withLock { $0 = true }
        // A failed reclaim costs only the memory it would have saved: the container stays.
        if let onReclaim, container.canReclaimMemory, let r = try? container.reclaimMemory() {
            onReclaim(r.beforeBytes &- min(r.afterBytes, r.beforeBytes))
        }
    }

    /// Thaws it if frozen, before a call, on the call's own thread when the kernel confirms at
    /// once (as it usually does, in microseconds), and on a blocking thread when it does not:
    /// the wait for a slow thaw sleeps, and the call's thread may be an event loop.
    func thawIfFrozen() async throws(RunnerError) {
        guard isFrozen else { return }
        let t0 = MonotonicClock.nowNanos()
        if try container.thawWithoutSleeping() == nil {
            let container = self.container
            try await BlockingThread.run { () throws(RunnerError) in _ = try container.thaw() }
        }
        onThaw?(Double(MonotonicClock.nowNanos() - t0) / 1e9)
        frozen.withLock { $0 = false }
    }

    /// `memoryNow`: whether to read the memory in use now (`fnrunner ps` shows it; a call's
    /// stats do not need it).
    func stats(memoryNow: Bool = true) -> ContainerCounters? {
        var c = ContainerCounters(counters.read(memoryNow: memoryNow))
        if container.network != nil { c.addNetwork(container.networkCounters()) }
        return c
    }

    func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool { await container.diedOfOOM(waitingUpTo: timeout) }

    /// Ends the container and releases what was kept open for it (its counters' descriptors),
    /// now, not whenever the last reference goes.
    func close() async {
        try? await container.close()
        counters.close()
    }
}
