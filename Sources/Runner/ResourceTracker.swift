import RunnerOS
import Synchronization

/// Memory and CPU tokens for containers: Fn's resource tracker (its later, single-pool form).
///
/// A hot or cold container holds a token for as long as it lives, so the sum of running
/// containers never exceeds what the node can give. Requests wait in arrival order; a release
/// grants every waiter that now fits.
public final class ResourceTracker: Sendable {
    public let totalMemoryBytes: UInt64
    public let totalCPUMillicores: UInt64

    /// Why a non-blocking request got no token, and how much is missing.
    public struct CapacityFull: Error, Sendable, Equatable {
        /// Memory still needed, in whole MiB (integer division, as Fn computes it).
        public var neededMemoryMB: UInt64
        public var neededCPUMillicores: UInt64

        public init(neededMemoryMB: UInt64, neededCPUMillicores: UInt64) {
            self.neededMemoryMB = neededMemoryMB
            self.neededCPUMillicores = neededCPUMillicores
        }
    }

    public struct Utilization: Sendable, Equatable {
        public var memoryUsedBytes: UInt64
        public var memoryAvailableBytes: UInt64
        public var cpuUsedMillicores: UInt64
        public var cpuAvailableMillicores: UInt64

        public init(memoryUsedBytes: UInt64, memoryAvailableBytes: UInt64, cpuUsedMillicores: UInt64, cpuAvailableMillicores: UInt64) {
            self.memoryUsedBytes = memoryUsedBytes
            self.memoryAvailableBytes = memoryAvailableBytes
            self.cpuUsedMillicores = cpuUsedMillicores
            self.cpuAvailableMillicores = cpuAvailableMillicores
        }
    }

    private struct Waiter {
        let id: UInt64
        let memory: UInt64
        let cpu: UInt64
        let continuation: CheckedContinuation<ResourceToken?, Never>
    }

    private struct State {
        var memoryUsed: UInt64 = 0
        var cpuUsed: UInt64 = 0
        var waiters: [Waiter] = []
        var nextWaiter: UInt64 = 1
    }
    private let state = Mutex(State())

    public init(totalMemoryBytes: UInt64, totalCPUMillicores: UInt64) {
        self.totalMemoryBytes = totalMemoryBytes
        self.totalCPUMillicores = totalCPUMillicores
    }

    /// Whether the request could ever be granted on this node (400 otherwise).
    public func isPossible(memoryBytes: UInt64, cpuMillicores: UInt64) -> Bool {
        memoryBytes <= totalMemoryBytes && cpuMillicores <= totalCPUMillicores
    }

    public var utilization: Utilization {
        state.withLock { s in
            Utilization(
                memoryUsedBytes: s.memoryUsed, memoryAvailableBytes: totalMemoryBytes - s.memoryUsed,
                cpuUsedMillicores: s.cpuUsed, cpuAvailableMillicores: totalCPUMillicores - s.cpuUsed)
        }
    }

    /// Requests currently waiting for a token.
    public var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// A token now, or how much is missing.
    public func tryAcquire(memoryBytes: UInt64, cpuMillicores: UInt64) -> Result<ResourceToken, CapacityFull> {
        if !isPossible(memoryBytes: memoryBytes, cpuMillicores: cpuMillicores) {
            return .failure(CapacityFull(neededMemoryMB: memoryBytes >> 20, neededCPUMillicores: cpuMillicores))
        }
        return state.withLock { s in
            if fits(s, memoryBytes, cpuMillicores) {
                return .success(grant(&s, memoryBytes, cpuMillicores))
            }
            let needMem = s.memoryUsed + memoryBytes > totalMemoryBytes ? s.memoryUsed + memoryBytes - totalMemoryBytes : 0
            let needCPU = s.cpuUsed + cpuMillicores > totalCPUMillicores ? s.cpuUsed + cpuMillicores - totalCPUMillicores : 0
            return .failure(CapacityFull(neededMemoryMB: needMem >> 20, neededCPUMillicores: needCPU))
        }
    }

    /// Waits for a token. nil when the request can never fit, when `timeout` passes, or when the
    /// task is cancelled; a token granted at the same moment as a cancellation is released.
    public func acquire(
        memoryBytes: UInt64, cpuMillicores: UInt64, timeout: Duration? = nil, clock: any AgentClock = SystemClock()
    ) async -> ResourceToken? {
        if !isPossible(memoryBytes: memoryBytes, cpuMillicores: cpuMillicores) || Task.isCancelled { return nil }
        guard let timeout else { return await wait(memoryBytes, cpuMillicores) }
        return await raceWithTimeout(timeout, clock: clock, { await self.wait(memoryBytes, cpuMillicores) }, discard: { $0.release() })
    }

    private func wait(_ memory: UInt64, _ cpu: UInt64) async -> ResourceToken? {
        let id = state.withLock { s -> UInt64 in
            defer { s.nextWaiter += 1 }
            return s.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<ResourceToken?, Never>) in
                let granted = state.withLock { s -> ResourceToken? in
                    if s.waiters.isEmpty && fits(s, memory, cpu) { return grant(&s, memory, cpu) }
                    s.waiters.append(Waiter(id: id, memory: memory, cpu: cpu, continuation: c))
                    return nil
                }
                if let granted { c.resume(returning: granted) }
                if Task.isCancelled { cancelWaiter(id) }
            }
        } onCancel: {
            cancelWaiter(id)
        }
    }

    private func cancelWaiter(_ id: UInt64) {
        let waiter = state.withLock { s -> Waiter? in
            guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: i)
        }
        waiter?.continuation.resume(returning: nil)
    }

    private func fits(_ s: State, _ memory: UInt64, _ cpu: UInt64) -> Bool {
        s.memoryUsed + memory <= totalMemoryBytes && s.cpuUsed + cpu <= totalCPUMillicores
    }

    private func grant(_ s: inout State, _ memory: UInt64, _ cpu: UInt64) -> ResourceToken {
        s.memoryUsed += memory
        s.cpuUsed += cpu
        return ResourceToken(tracker: self, memoryBytes: memory, cpuMillicores: cpu)
    }

    func release(_ token: ResourceToken) {
        let ready = state.withLock { s -> [(Waiter, ResourceToken)] in
            s.memoryUsed -= token.memoryBytes
            s.cpuUsed -= token.cpuMillicores
            var granted: [(Waiter, ResourceToken)] = []
            var remaining: [Waiter] = []
            for w in s.waiters {
                if fits(s, w.memory, w.cpu) {
                    granted.append((w, grant(&s, w.memory, w.cpu)))
                } else {
                    remaining.append(w)
                }
            }
            s.waiters = remaining
            return granted
        }
        for (w, t) in ready { w.continuation.resume(returning: t) }
    }
}

/// Memory and CPU held for one container; released exactly once, however often `release` is called.
public final class ResourceToken: Sendable {
    public let memoryBytes: UInt64
    public let cpuMillicores: UInt64
    private let tracker: ResourceTracker
    private let released = Atomic<Bool>(false)

    init(tracker: ResourceTracker, memoryBytes: UInt64, cpuMillicores: UInt64) {
        self.tracker = tracker
        self.memoryBytes = memoryBytes
        self.cpuMillicores = cpuMillicores
    }

    public func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { tracker.release(self) }
    }

    public var isReleased: Bool { released.load(ordering: .acquiring) }
}
