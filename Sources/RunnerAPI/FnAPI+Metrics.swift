import HTTPTypes
import Hummingbird
import Runner

/// `GET /metrics`: the agent's counters in Prometheus' text format.
extension FnAPI {
    func addMetrics(to router: Router<FnRequestContext>) {
        // What `fnrunner ps` lists: the hot containers of this node.
        router.get("/v2/runner/containers") { _, _ in try Self.json(["items": agent.containers]) }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: renderMetrics())))
        }
    }

    func renderMetrics() -> String {
        let c = agent.metrics.counts
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        family("fn_calls_total", "counter", "Calls that ended, by fn and status.")
        for fn in c.calls.keys.sorted() {
            for (status, n) in c.calls[fn]!.sorted(by: { $0.key < $1.key }) {
                out += "fn_calls_total{fn_id=\"\(Self.escape(fn))\",status=\"\(status)\"} \(n)\n"
            }
        }
        family("fn_network_received_bytes_total", "counter", "Bytes functions on the bridge received during calls, by fn.")
        for fn in c.networkBytes.keys.sorted() { out += "fn_network_received_bytes_total{fn_id=\"\(Self.escape(fn))\"} \(c.networkBytes[fn]![0])\n" }
        family("fn_network_sent_bytes_total", "counter", "Bytes functions on the bridge sent during calls, by fn.")
        for fn in c.networkBytes.keys.sorted() { out += "fn_network_sent_bytes_total{fn_id=\"\(Self.escape(fn))\"} \(c.networkBytes[fn]![1])\n" }
        histogram(&out, "fn_call_queue_wait_seconds", "Time from a call's arrival until it started on a container.", c.queueWait)
        histogram(&out, "fn_call_execution_seconds", "Time a call ran on its container.", c.execution)
        histogram(&out, "fn_container_start_seconds", "Time to start a hot container until it listens (cold start).", c.containerStart)
        histogram(&out, "fn_container_freeze_seconds", "Time to freeze an idle container.", c.freeze)
        histogram(&out, "fn_container_thaw_seconds", "Time to thaw a frozen container for a call.", c.thaw)
        histogram(&out, "fn_image_pull_seconds", "Image pulls that container starts needed.", c.pulls)
        family(
            "fn_container_start_phase_seconds", "histogram",
            "Container starts by phase: image, sandbox (pool_claim or cgroup_create or sandbox_prepare, clone, exec) and ready "
                + "(until an http-stream function listens).")
        for phase in c.startPhases.keys.sorted() {
            buckets(&out, "fn_container_start_phase_seconds", label: "phase=\"\(phase)\",", c.startPhases[phase]!)
        }
        family("fn_evictions_total", "counter", "Idle containers evicted to make room for another function.")
        out += "fn_evictions_total \(c.evictions)\n"
        family("fn_prewarm_hits_total", "counter", "Calls of prewarmed fns that found an instance started ahead for them.")
        out += "fn_prewarm_hits_total \(c.prewarmHits)\n"
        family("fn_prewarm_misses_total", "counter", "Calls of prewarmed fns that had to wait for a new instance.")
        out += "fn_prewarm_misses_total \(c.prewarmMisses)\n"
        family("fn_launch_failures_total", "counter", "Hot containers that failed to start.")
        out += "fn_launch_failures_total \(c.launchFailures)\n"
        family("fn_freeze_reclaims_total", "counter", "Memory reclaims of frozen containers (FN_FREEZE_RECLAIM, cgroup v2).")
        out += "fn_freeze_reclaims_total \(c.reclaims)\n"
        family("fn_freeze_reclaimed_bytes_total", "counter", "Bytes those reclaims freed.")
        out += "fn_freeze_reclaimed_bytes_total \(c.reclaimedBytes)\n"
        family("fn_containers", "gauge", "Hot containers by state (wait: for resources; paused: frozen).")
        let states = agent.containerCounts
        for state in SlotQueueStats.ContainerState.allCases where state != .none && state != .done {
            out += "fn_containers{state=\"\(state)\"} \(states[state] ?? 0)\n"
        }
        if let paths = agent.driver.startPaths {
            family("fn_container_starts_total", "counter", "Container starts: from the sandbox pool, or direct (pool empty or off).")
            out += "fn_container_starts_total{path=\"pooled\"} \(paths.pooled)\nfn_container_starts_total{path=\"direct\"} \(paths.direct)\n"
            family("fn_sandbox_pool_ready", "gauge", "Sandboxes ready in the pool (FN_SANDBOX_POOL_SIZE).")
            out += "fn_sandbox_pool_ready \(paths.poolReady)\n"
        }
        let u = agent.tracker.utilization
        family("fn_memory_bytes", "gauge", "Memory tokens held by containers, and the node's total.")
        out += "fn_memory_bytes{kind=\"used\"} \(u.memoryUsedBytes)\nfn_memory_bytes{kind=\"total\"} \(agent.tracker.totalMemoryBytes)\n"
        family("fn_cpu_millicores", "gauge", "CPU tokens held by containers, and the node's total.")
        out += "fn_cpu_millicores{kind=\"used\"} \(u.cpuUsedMillicores)\nfn_cpu_millicores{kind=\"total\"} \(agent.tracker.totalCPUMillicores)\n"
        return out
    }

    private func histogram(_ out: inout String, _ name: String, _ help: String, _ h: AgentMetrics.Histogram) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        buckets(&out, name, label: "", h)
    }

    /// One histogram's series; `label` is `name="value",` or empty.
    private func buckets(_ out: inout String, _ name: String, label: String, _ h: AgentMetrics.Histogram) {
        var cumulative: UInt64 = 0
        for (bound, n) in zip(h.bounds, h.counts) {
            cumulative += n
            out += "\(name)_bucket{\(label)le=\"\(bound)\"} \(cumulative)\n"
        }
        let plain = label.isEmpty ? "" : "{\(label.dropLast())}"
        out += "\(name)_bucket{\(label)le=\"+Inf\"} \(h.count)\n\(name)_sum\(plain) \(h.sum)\n\(name)_count\(plain) \(h.count)\n"
    }

    static func escape(_ label: String) -> String {
        label.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
