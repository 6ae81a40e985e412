import Prometheus
import RunnerOS
import Synchronization

/// What the agent counts for `/metrics`: calls by fn and status, latencies (queue wait,
/// execution, container start, freeze), evictions. The series live in swift-prometheus' registry,
/// one per agent, so agents in one process (the tests) count apart; the exposition format is the
/// library's. Containers by state, resource tokens and the sandbox pool are read live at each
/// scrape (`Agent.prometheusText`).
public final class AgentMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// From 10 µs to 60 s.
    static let latencyBounds = [
        0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
        30, 60,
    ]

    private let queueWait: ValueHistogram
    private let execution: ValueHistogram
    private let containerStart: ValueHistogram
    private let freeze: ValueHistogram
    private let thaw: ValueHistogram
    private let pulls: ValueHistogram
    private let evictions: Counter
    private let prewarmHits: Counter
    private let prewarmMisses: Counter
    private let launchFailures: Counter
    private let reclaims: Counter
    private let reclaimedBytes: Counter

    /// Series with a label value known only when it is first seen, kept here so a call finds its
    /// counter without the registry's name and label validation.
    private struct Labeled {
        var calls: [String: [String: Counter]] = [:]
        var networkBytes: [String: (received: Counter, sent: Counter)] = [:]
        var startPhases: [String: ValueHistogram] = [:]
        /// The driver's start counts at the last scrape: the counter grows by the difference.
        var startsSeen = (pooled: 0, direct: 0, forked: 0, fallbacks: 0)
    }
    private let labeled = Mutex(Labeled())

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func histogram(_ name: String, _ help: String, _ bounds: [Double] = AgentMetrics.latencyBounds) -> ValueHistogram {
            registry.makeValueHistogram(descriptor: Self.descriptor(name, help), labels: [], buckets: bounds)
        }
        func counter(_ name: String, _ help: String) -> Counter { registry.makeCounter(descriptor: Self.descriptor(name, help)) }
        queueWait = histogram("fn_call_queue_wait_seconds", "Time from a call's arrival until it started on a container.")
        execution = histogram("fn_call_execution_seconds", "Time a call ran on its container.")
        containerStart = histogram("fn_container_start_seconds", "Time to start a hot container until it listens (cold start).")
        freeze = histogram("fn_container_freeze_seconds", "Time to freeze an idle container.")
        thaw = histogram("fn_container_thaw_seconds", "Time to thaw a frozen container for a call.")
        pulls = histogram("fn_image_pull_seconds", "Image pulls that container starts needed.", [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600])
        evictions = counter("fn_evictions_total", "Idle containers evicted to make room for another function.")
        prewarmHits = counter("fn_prewarm_hits_total", "Calls of prewarmed fns that found an instance started ahead for them.")
        prewarmMisses = counter("fn_prewarm_misses_total", "Calls of prewarmed fns that had to wait for a new instance.")
        launchFailures = counter("fn_launch_failures_total", "Hot containers that failed to start.")
        reclaims = counter("fn_freeze_reclaims_total", "Memory reclaims of frozen containers (FN_FREEZE_RECLAIM, cgroup v2).")
        reclaimedBytes = counter("fn_freeze_reclaimed_bytes_total", "Bytes those reclaims freed.")
    }

    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    func observeCall(fnID: String, status: String, waitSeconds: Double?, executionSeconds: Double?, stats: CallStats? = nil) {
        typealias Network = (received: Counter, sent: Counter)
        let (calls, network) = labeled.withLock { s -> (Counter, Network?) in
            let calls: Counter
            if let known = s.calls[fnID]?[status] {
                calls = known
            } else {
                calls = registry.makeCounter(
                    descriptor: Self.descriptor("fn_calls_total", "Calls that ended, by fn and status."),
                    labels: [("fn_id", fnID), ("status", status)])
                s.calls[fnID, default: [:]][status] = calls
            }
            guard stats?.networkReceivedBytes != nil else { return (calls, nil) }
            if let known = s.networkBytes[fnID] { return (calls, known) }
            let pair: Network = (
                received: registry.makeCounter(
                    descriptor: Self.descriptor("fn_network_received_bytes_total", "Bytes functions on the bridge received during calls, by fn."),
                    labels: [("fn_id", fnID)]),
                sent: registry.makeCounter(
                    descriptor: Self.descriptor("fn_network_sent_bytes_total", "Bytes functions on the bridge sent during calls, by fn."),
                    labels: [("fn_id", fnID)]))
            s.networkBytes[fnID] = pair
            return (calls, pair)
        }
        calls.increment()
        if let network, let rx = stats?.networkReceivedBytes, let tx = stats?.networkSentBytes {
            network.received.increment(by: Int64(clamping: rx))
            network.sent.increment(by: Int64(clamping: tx))
        }
        if let w = waitSeconds { queueWait.record(w) }
        if let e = executionSeconds { execution.record(e) }
    }

    func observeContainerStart(seconds: Double) { containerStart.record(seconds) }
    func observeFreeze(seconds: Double) { freeze.record(seconds) }
    func observeThaw(seconds: Double) { thaw.record(seconds) }
    func observePull(seconds: Double) { pulls.record(seconds) }

    func observeStartPhases(_ phases: [TimedPhase]) {
        let histograms = labeled.withLock { s in
            phases.map { p in
                let phase = String(p.name.map { $0 == " " ? "_" : $0 })
                if let known = s.startPhases[phase] { return known }
                let made = registry.makeValueHistogram(
                    descriptor: Self.descriptor(
                        "fn_container_start_phase_seconds",
                        "Container starts by phase: image, sandbox (pool_claim or cgroup_create or sandbox_prepare, clone, exec) "
                            + "and ready (until an http-stream function listens)."),
                    labels: [("phase", phase)], buckets: Self.latencyBounds)
                s.startPhases[phase] = made
                return made
            }
        }
        for (histogram, phase) in zip(histograms, phases) { histogram.record(phase.seconds) }
    }

    func countEvictions(_ n: Int) { evictions.increment(by: Int64(n)) }
    func countLaunchFailure() { launchFailures.increment() }
    func countPrewarm(hit: Bool) { (hit ? prewarmHits : prewarmMisses).increment() }
    func observeReclaim(freedBytes: UInt64) {
        reclaims.increment()
        reclaimedBytes.increment(by: Int64(clamping: freedBytes))
    }

    /// Sets the series read live at a scrape. The driver counts its starts itself, so the
    /// counter of starts grows by what the driver counted since the last scrape.
    func setLive(containers: [SlotQueueStats.ContainerState: Int], tracker: ResourceTracker, startPaths: ContainerStartPaths?) {
        let help = "Hot containers by state (wait: for resources; paused: frozen)."
        for state in SlotQueueStats.ContainerState.allCases where state != .none && state != .done {
            registry.makeGauge(descriptor: Self.descriptor("fn_containers", help), labels: [("state", "\(state)")])
                .set(Int64(containers[state] ?? 0))
        }
        let used = tracker.utilization
        let memory = Self.descriptor("fn_memory_bytes", "Memory tokens held by containers, and the node's total.")
        registry.makeGauge(descriptor: memory, labels: [("kind", "used")]).set(Int64(clamping: used.memoryUsedBytes))
        registry.makeGauge(descriptor: memory, labels: [("kind", "total")]).set(Int64(clamping: tracker.totalMemoryBytes))
        let cpu = Self.descriptor("fn_cpu_millicores", "CPU tokens held by containers, and the node's total.")
        registry.makeGauge(descriptor: cpu, labels: [("kind", "used")]).set(Int64(clamping: used.cpuUsedMillicores))
        registry.makeGauge(descriptor: cpu, labels: [("kind", "total")]).set(Int64(clamping: tracker.totalCPUMillicores))
        guard let paths = startPaths else { return }
        registry.makeGauge(descriptor: Self.descriptor("fn_sandbox_pool_ready", "Sandboxes ready in the pool (FN_SANDBOX_POOL_SIZE)."))
            .set(Int64(paths.poolReady))
        let starts = Self.descriptor("fn_container_starts_total", "Container starts: from the sandbox pool, direct (pool empty or off), or forked from a zygote template.")
        let pooled = registry.makeCounter(descriptor: starts, labels: [("path", "pooled")])
        let direct = registry.makeCounter(descriptor: starts, labels: [("path", "direct")])
        let forked = registry.makeCounter(descriptor: starts, labels: [("path", "forked")])
        let fallbacks = registry.makeCounter(
            descriptor: Self.descriptor(
                "fn_zygote_fallbacks_total", "Starts of fnrunner.io/zygote functions that fell back to a normal container."))
        labeled.withLock { s in
            pooled.increment(by: Int64(max(0, paths.pooled - s.startsSeen.pooled)))
            direct.increment(by: Int64(max(0, paths.direct - s.startsSeen.direct)))
            forked.increment(by: Int64(max(0, paths.forked - s.startsSeen.forked)))
            fallbacks.increment(by: Int64(max(0, paths.zygoteFallbacks - s.startsSeen.fallbacks)))
            s.startsSeen = (
                max(paths.pooled, s.startsSeen.pooled), max(paths.direct, s.startsSeen.direct), max(paths.forked, s.startsSeen.forked),
                max(paths.zygoteFallbacks, s.startsSeen.fallbacks)
            )
        }
    }
}
