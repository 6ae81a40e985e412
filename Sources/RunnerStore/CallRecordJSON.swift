import RunnerOS
import Runner

/// A call record as the store keeps it, written by hand: JSONEncoder's reflection was the
/// largest single cost of a hot call under load (7% of the server's CPU in a `perf` profile of
/// wrk against a hot function), and every call is written. Same keys and values as
/// `CallRecord`'s Codable form, which reads it back.
enum CallRecordJSON {
    static func encode(_ r: CallRecord) -> String {
        var out = "{"
        out.reserveCapacity(512)
        var first = true
        func key(_ k: String) {
            if !first { out += "," }
            first = false
            out += "\""
            out += k
            out += "\":"
        }
        func string(_ k: String, _ v: String?) {
            guard let v else { return }
            key(k)
            appendQuoted(v, to: &out)
        }
        func number(_ k: String, _ v: (some BinaryInteger)?) {
            guard let v else { return }
            key(k)
            out += String(v)
        }
        string("id", r.id)
        string("status", r.status.rawValue)
        string("app_id", r.appID)
        string("app_name", r.appName)
        string("fn_id", r.fnID)
        string("fn_name", r.fnName)
        string("image", r.image)
        string("format", r.format)
        string("type", r.type)
        number("memory", r.memoryMB)
        number("cpus", r.cpuMillicores)
        number("timeout", r.timeoutSeconds)
        number("idle_timeout", r.idleTimeoutSeconds)
        string("method", r.method)
        string("url", r.url)
        string("created_at", r.createdAt)
        string("started_at", r.startedAt)
        string("completed_at", r.completedAt)
        number("execution_duration", r.executionDurationNanos)
        string("error", r.error)
        string("error_code", r.errorCode)
        if let s = r.stats {
            key("stats")
            out += "{\"cpu_ns\":\(s.cpuNanos),\"cpu_throttled_periods\":\(s.cpuThrottledPeriods),\"cpu_throttled_ns\":\(s.cpuThrottledNanos)"
            if let peak = s.memoryPeakBytes { out += ",\"memory_peak_bytes\":\(peak)" }
            if let rx = s.networkReceivedBytes { out += ",\"net_rx_bytes\":\(rx)" }
            if let tx = s.networkSentBytes { out += ",\"net_tx_bytes\":\(tx)" }
            out += ",\"reused_container\":\(s.reusedContainer ? "true" : "false"),\"container\":"
            appendQuoted(s.container, to: &out)
            out += "}"
        }
        out += "}"
        return out
    }

    static func appendQuoted(_ s: String, to out: inout String) { JSONString.append(s, to: &out) }
}
