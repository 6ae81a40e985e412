import Logging
import RunnerOS

/// How long each phase of a container's start took, for the one log line every start gets:
/// `image_ms` (finding the image, pulling it if missing, building its bytecode layer, the
/// rootfs), `sandbox_ms` (the sandbox start: clone to exec), `ready_ms` (an http-stream
/// function's time from exec until it listens), and `start_ms`, all of it.
struct StartPhases {
    private let began = MonotonicClock.nowNanos()
    private var marks: [(String, UInt64)] = []
    private var last: UInt64

    init() { last = began }

    /// Ends the phase `name` now.
    mutating func mark(_ name: String) {
        let now = MonotonicClock.nowNanos()
        marks.append((name, now - last))
        last = now
    }

    var metadata: Logger.Metadata {
        var m: Logger.Metadata = ["start_ms": "\(Self.millis(Double(last - began) / 1e9))"]
        for (name, nanos) in marks { m[name + "_ms"] = "\(Self.millis(Double(nanos) / 1e9))" }
        return m
    }

    /// Seconds as milliseconds with one decimal, as the log shows them.
    static func millis(_ seconds: Double) -> String {
        let tenths = Int((seconds * 10_000).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

extension NativeDriver {
    /// The log line of a container that started.
    func logStarted(_ task: ContainerTask, format: String, _ phases: StartPhases) {
        logger.info(
            "started a container",
            metadata: task.function.logMetadata(container: task.name).merging(phases.metadata) { $1 }.merging(["format": "\(format)"]) { $1 })
    }
}
