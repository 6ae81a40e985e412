import RunnerOS
import Synchronization

/// Memory and CPU tokens for containers: Fn's resource tracker (its later, single-pool form).
///
/// A hot or cold container holds a token for as long as it lives, so the sum of running
/// containers never exceeds what the node can give. Requests wait in line in arrival order; a
/// release grants, in line order, every request in line that now fits, at the release itself,
/// so room freed for a request in line cannot be taken by one that asks after the release.
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

    private struct State {
        var memoryUsed: UInt64 = 0
        var cpuUsed: UInt64 = 0
        /// Requests in line, in arrival order.
        var line: [ResourceRequest] = []
        /// Tokens of containers told to end for room (evicted), not yet released: their room
        /// is on its way, and an eviction deciding what else to end counts it as coming.
        var incoming: [ObjectIdentifier: ResourceToken] = [:]
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

    /// Requests in line: waiting for a token, or holding their place while their launch evicts.
    public var waiterCount: Int { state.withLock { $0.line.count } }

    /// A token now if the request fits in what is free (as Fn's tracker grants, whoever waits), or
    /// how much is missing.
    public func tryAcquire(memoryBytes: UInt64, cpuMillicores: UInt64) -> Result<ResourceToken, CapacityFull> {
        tryAcquire(memoryBytes, cpuMillicores, behindLine: false)
    }

    /// A token now only from room nobody in line waits for: for work ahead of demand, which must
    /// never take the room a waiting call's launch is about to get.
    public func tryAcquireSpare(memoryBytes: UInt64, cpuMillicores: UInt64) -> Result<ResourceToken, CapacityFull> {
        tryAcquire(memoryBytes, cpuMillicores, behindLine: true)
    }

    private func tryAcquire(_ memoryBytes: UInt64, _ cpuMillicores: UInt64, behindLine: Bool) -> Result<ResourceToken, CapacityFull> {
        if !isPossible(memoryBytes: memoryBytes, cpuMillicores: cpuMillicores) {
            return .failure(CapacityFull(neededMemoryMB: memoryBytes >> 20, neededCPUMillicores: cpuMillicores))
        }
        return state.withLock { s in
            let (memory, cpu) = demand(s, line: behindLine ? s.line[...] : [], plus: memoryBytes, cpuMillicores)
            if memory <= totalMemoryBytes && cpu <= totalCPUMillicores {
                return .success(grant(&s, memoryBytes, cpuMillicores))
            }
            let needMem = memory > totalMemoryBytes ? memory - totalMemoryBytes : 0
            let needCPU = cpu > totalCPUMillicores ? cpu - totalCPUMillicores : 0
            return .failure(CapacityFull(neededMemoryMB: needMem >> 20, neededCPUMillicores: needCPU))
        }
    }

    /// A place in line, granted at once when the request fits in what is free. The request must be
    /// possible (`isPossible`); its holder takes the token or leaves the line.
    public func enqueue(memoryBytes: UInt64, cpuMillicores: UInt64) -> ResourceRequest {
        let (request, token) = state.withLock { s -> (ResourceRequest, ResourceToken?) in
            let request = ResourceRequest(tracker: self, memoryBytes: memoryBytes, cpuMillicores: cpuMillicores)
            if fits(s, memoryBytes, cpuMillicores) { return (request, grant(&s, memoryBytes, cpuMillicores)) }
            s.line.append(request)
            return (request, nil)
        }
        if let token { request.grant(token) }
        return request
    }

    /// Waits for a token. nil when the request can never fit, when `timeout` passes, or when the
    /// task is cancelled; a token granted at that very moment is returned all the same.
    public func acquire(
        memoryBytes: UInt64, cpuMillicores: UInt64, timeout: Duration? = nil, clock: any AgentClock = SystemClock()
    ) async -> ResourceToken? {
        if !isPossible(memoryBytes: memoryBytes, cpuMillicores: cpuMillicores) || Task.isCancelled { return nil }
        let request = enqueue(memoryBytes: memoryBytes, cpuMillicores: cpuMillicores)
        defer { request.leave() }
        return await request.wait(timeout: timeout, clock: clock)
    }

    /// Takes a request out of the line (it left, or its wait ended).
    func remove(_ request: ResourceRequest) {
        state.withLock { s in s.line.removeAll { $0 === request } }
    }

    /// What `request` still lacks, counting room on its way back (see `expectRelease`) as
    /// free: first once everyone ahead of it in line has theirs, then for itself alone. An
    /// eviction for it frees the first if it can, else the second. Zero once it is granted or
    /// has left the line.
    ///
    /// Why the line: two launches that each compared their own need with the same free room
    /// would each evict for it, and the second would then wait for room the first one took.
    /// Why alone as well: a release grants whoever in line fits, so a small launch behind one
    /// that no eviction can satisfy still gets the room it evicts for.
    public func shortfalls(of request: ResourceRequest) -> [Shortfall] {
        state.withLock { s in
            guard let position = s.line.firstIndex(where: { $0 === request }) else {
                return [Shortfall(memoryBytes: 0, cpuMillicores: 0)]
            }
            // Room on its way counts as free: a few tokens at most, summed only here.
            let freeMemory = s.incoming.values.reduce(totalMemoryBytes) { $0 + $1.memoryBytes }
            let freeCPU = s.incoming.values.reduce(totalCPUMillicores) { $0 + $1.cpuMillicores }
            func lacking(_ held: (memory: UInt64, cpu: UInt64)) -> Shortfall {
                Shortfall(
                    memoryBytes: held.memory > freeMemory ? held.memory - freeMemory : 0,
                    cpuMillicores: held.cpu > freeCPU ? held.cpu - freeCPU : 0)
            }
            let inLine = lacking(demand(s, line: s.line[..<position], plus: request.memoryBytes, request.cpuMillicores))
            let alone = lacking(demand(s, line: [], plus: request.memoryBytes, request.cpuMillicores))
            return inLine == alone ? [inLine] : [inLine, alone]
        }
    }

    /// Memory and CPU missing for a request.
    public struct Shortfall: Sendable, Equatable {
        public var memoryBytes: UInt64
        public var cpuMillicores: UInt64

        public init(memoryBytes: UInt64, cpuMillicores: UInt64) {
            self.memoryBytes = memoryBytes
            self.cpuMillicores = cpuMillicores
        }

        public var isZero: Bool { memoryBytes == 0 && cpuMillicores == 0 }
    }

    /// The holder of `token` was told to end to make room: until the token is released (or
    /// `cancelExpectedRelease`), its room counts as on its way. False if it was released already.
    @discardableResult
    public func expectRelease(_ token: ResourceToken) -> Bool {
        state.withLock { s in
            guard !token.isReleased else { return false }
            return s.incoming.updateValue(token, forKey: ObjectIdentifier(token)) == nil
        }
    }

    /// The holder will not end after all (a call took the container first).
    public func cancelExpectedRelease(_ token: ResourceToken) {
        state.withLock { _ = $0.incoming.removeValue(forKey: ObjectIdentifier(token)) }
    }

    /// What would be held if a request of `memory` and `cpu` got its room only after the
    /// requests of `line` (a part of the line, or none).
    private func demand(_ s: State, line: ArraySlice<ResourceRequest>, plus memory: UInt64, _ cpu: UInt64)
        -> (memory: UInt64, cpu: UInt64)
    {
        line.reduce((s.memoryUsed + memory, s.cpuUsed + cpu)) { ($0.0 + $1.memoryBytes, $0.1 + $1.cpuMillicores) }
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
        let ready = state.withLock { s -> [(ResourceRequest, ResourceToken)] in
            s.incoming.removeValue(forKey: ObjectIdentifier(token))
            s.memoryUsed -= token.memoryBytes
            s.cpuUsed -= token.cpuMillicores
            var granted: [(ResourceRequest, ResourceToken)] = []
            var remaining: [ResourceRequest] = []
            for r in s.line {
                if fits(s, r.memoryBytes, r.cpuMillicores) {
                    granted.append((r, grant(&s, r.memoryBytes, r.cpuMillicores)))
                } else {
                    remaining.append(r)
                }
            }
            s.line = remaining
            return granted
        }
        for (r, t) in ready { r.grant(t) }
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
