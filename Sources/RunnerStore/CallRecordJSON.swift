import RunnerOS
import Runner

/// A call record as the store keeps it, written by hand: JSONEncoder's reflection was the
/// largest single cost of a hot call under load (7% of the server's CPU in a `perf` profile of
/// wrk against a hot function), and every call is written. Same keys and values as
/// `CallRecord`'s Codable form, which reads it back.
///
/// The text is made as UTF-8 bytes. Appended to a `String` piece by piece (about 80 appends,
/// and a scan of every string for characters to escape), a record cost the writer 7.4-8.7 µs
/// of CPU (perf of serve under wrk -c8); as bytes, 2.1-2.2 µs.
enum CallRecordJSON {
    static func encode(_ r: CallRecord) -> String {
        var w = Writer()
        w.string("id", r.id)
        w.string("status", r.status.rawValue)
        w.string("app_id", r.appID)
        w.string("app_name", r.appName)
        w.string("fn_id", r.fnID)
        w.string("fn_name", r.fnName)
        w.string("image", r.image)
        w.string("format", r.format)
        w.string("type", r.type)
        w.number("memory", r.memoryMB)
        w.number("cpus", r.cpuMillicores)
        w.number("timeout", r.timeoutSeconds)
        w.number("idle_timeout", r.idleTimeoutSeconds)
        w.string("method", r.method)
        w.string("url", r.url)
        w.string("created_at", r.createdAt)
        w.string("started_at", r.startedAt)
        w.string("completed_at", r.completedAt)
        w.number("execution_duration", r.executionDurationNanos)
        w.string("error", r.error)
        w.string("error_code", r.errorCode)
        if let s = r.stats {
            w.key("stats")
            w.open()
            w.number("cpu_ns", s.cpuNanos)
            w.number("cpu_throttled_periods", s.cpuThrottledPeriods)
            w.number("cpu_throttled_ns", s.cpuThrottledNanos)
            w.number("memory_peak_bytes", s.memoryPeakBytes)
            w.number("net_rx_bytes", s.networkReceivedBytes)
            w.number("net_tx_bytes", s.networkSentBytes)
            w.bool("reused_container", s.reusedContainer)
            w.string("container", s.container)
            w.close()
        }
        return w.finish()
    }

    /// One JSON object's members, nested objects opened and closed in turn.
    struct Writer {
        private var out: [UInt8] = []
        /// Whether the object being written has a member yet.
        private var first = true

        init() {
            out.reserveCapacity(640)
            out.append(UInt8(ascii: "{"))
        }

        /// Ends the object: the record's text.
        mutating func finish() -> String {
            out.append(UInt8(ascii: "}"))
            return String(decoding: out, as: UTF8.self)
        }

        mutating func key(_ k: StaticString) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            k.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(UInt8(ascii: "\""))
            out.append(UInt8(ascii: ":"))
        }

        mutating func open() {
            out.append(UInt8(ascii: "{"))
            first = true
        }

        mutating func close() {
            out.append(UInt8(ascii: "}"))
            first = false
        }

        mutating func string(_ k: StaticString, _ v: String?) {
            guard let v else { return }
            key(k)
            JSONString.append(v, to: &out)
        }

        mutating func number(_ k: StaticString, _ v: (some BinaryInteger)?) {
            guard let v else { return }
            key(k)
            Self.appendDecimal(v, to: &out)
        }

        mutating func bool(_ k: StaticString, _ v: Bool) {
            key(k)
            out.append(contentsOf: v ? Self.trueBytes : Self.falseBytes)
        }

        private static let trueBytes = Array("true".utf8)
        private static let falseBytes = Array("false".utf8)

        static func appendDecimal(_ v: some BinaryInteger, to out: inout [UInt8]) {
            if v < 0 { out.append(UInt8(ascii: "-")) }
            var m = v.magnitude
            var count = 1
            var rest = m
            while rest >= 10 {
                rest /= 10
                count += 1
            }
            out.append(contentsOf: repeatElement(0, count: count))
            var i = out.count
            repeat {
                i -= 1
                out[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: m % 10)
                m /= 10
            } while m != 0
        }
    }
}
