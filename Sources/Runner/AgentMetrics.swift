import CgroupDriver
import RunnerOS
import Synchronization

/// What the agent counts for `/metrics`: calls by fn and status, latencies (queue wait,
/// execution, container start, freeze), evictions. Containers by state and resource tokens are
/// read live from the queues and the tracker (`Agent.metricsSnapshot`).
public final class AgentMetrics: Sendable {
    /// A cumulative histogram with fixed bounds in seconds, as Prometheus wants it.
    public struct Histogram: Sendable, Equatable {
        public let bounds: [Double]
        /// counts[i]: observations ≤ bounds[i] (not cumulative; the renderer accumulates).
        public private(set) var counts: [UInt64]
        public private(set) var sum: Double = 0
        public private(set) var count: UInt64 = 0

        public init(bounds: [Double]) {
            self.bounds = bounds
            counts = [UInt64](repeating: 0, count: bounds.count)
        }

        mutating func observe(_ seconds: Double) {
            sum += seconds
            count += 1
            if let i = bounds.firstIndex(where: { seconds <= $0 }) { counts[i] += 1 }
        }

        /// From 10 µs to 60 s.
        static var latency: Histogram {
            Histogram(bounds: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
        }
    }

    public struct Counts: Sendable, Equatable {
        /// calls[fnID][status]
        public var calls: [String: [String: UInt64]] = [:]
        public var queueWait = Histogram.latency
        public var execution = Histogram.latency
        public var containerStart = Histogram.latency
        public var freeze = Histogram.latency
        public var thaw = Histogram.latency
        /// Image pulls a container start needed (their durations; count = how many).
        public var pulls = Histogram(bounds: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600])
        /// Container starts by phase (`image`, `sandbox`, `ready`, and within the sandbox start
        /// `pool_claim` or `cgroup_create` or `sandbox_prepare`, `clone`, `exec`).
        public var startPhases: [String: Histogram] = [:]
        public var evictions: UInt64 = 0
        /// Calls of prewarmed fns that found an instance started ahead for them, or had to wait
        /// for a new one.
        public var prewarmHits: UInt64 = 0
        public var prewarmMisses: UInt64 = 0
        public var launchFailures: UInt64 = 0
        /// Reclaims after freezing (FN_FREEZE_RECLAIM), and the bytes they freed.
        public var reclaims: UInt64 = 0
        public var reclaimedBytes: UInt64 = 0
        /// Network bytes of calls on the bridge, by fn: [received, sent].
        public var networkBytes: [String: [UInt64]] = [:]
    }

    private let state = Mutex(Counts())

    public init() {}

    public var counts: Counts { state.withLock { $0 } }

    func observeCall(fnID: String, status: String, waitSeconds: Double?, executionSeconds: Double?, stats: CallStats? = nil) {
        state.withLock { s in
            s.calls[fnID, default: [:]][status, default: 0] += 1
            if let rx = stats?.networkReceivedBytes, let tx = stats?.networkSentBytes {
                s.networkBytes[fnID, default: [0, 0]][0] += rx
                s.networkBytes[fnID, default: [0, 0]][1] += tx
            }
            if let w = waitSeconds { s.queueWait.observe(w) }
            if let e = executionSeconds { s.execution.observe(e) }
        }
    }

    func observeContainerStart(seconds: Double) { state.withLock { $0.containerStart.observe(seconds) } }
    func observeFreeze(seconds: Double) { state.withLock { $0.freeze.observe(seconds) } }
    func observeThaw(seconds: Double) { state.withLock { $0.thaw.observe(seconds) } }
    func observePull(seconds: Double) { state.withLock { $0.pulls.observe(seconds) } }
    func observeStartPhases(_ phases: [TimedPhase]) {
        state.withLock { s in
            for p in phases { s.startPhases[String(p.name.map { $0 == " " ? "_" : $0 }), default: .latency].observe(p.seconds) }
        }
    }
    func countEvictions(_ n: Int) { state.withLock { $0.evictions += UInt64(n) } }
    func countLaunchFailure() { state.withLock { $0.launchFailures += 1 } }
    func countPrewarm(hit: Bool) { state.withLock { if hit { $0.prewarmHits += 1 } else { $0.prewarmMisses += 1 } } }
    func observeReclaim(_ r: CgroupDriver.Reclaim) {
        state.withLock {
            $0.reclaims += 1
            $0.reclaimedBytes += r.beforeBytes &- min(r.afterBytes, r.beforeBytes)
        }
    }
}
