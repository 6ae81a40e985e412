import Runner
import Logging
import RunnerOS
import Sandbox

/// How long each phase of a container's start took, for the one log line every start gets:
/// `image_ms` (finding the image, pulling it if missing, building its bytecode layer, the
/// rootfs), `sandbox_ms` (the sandbox start: clone to exec), `ready_ms` (an http-stream
/// function's time from exec until it listens), and `start_ms`, all of it.
/// The same phases (with the sandbox's own inside `sandbox`) also feed
/// `fn_container_start_phase_seconds` and, on a traced call, the `container start` span.
struct StartPhases {
    private let began = MonotonicClock.nowNanos()
    private(set) var phases: [TimedPhase] = []
    /// The sandbox start's own phases (pool claim, clone, exec).
    private(set) var sandbox: [TimedPhase] = []
    private var last: UInt64

    init() { last = began }

    /// Ends the phase `name` now.
    mutating func mark(_ name: String) {
        let now = MonotonicClock.nowNanos()
        phases.append(TimedPhase(name, start: last, end: now))
        last = now
    }

    /// Ends the `sandbox` phase with the container it started, whose own phases it keeps.
    mutating func sandboxStarted(_ container: Container) {
        mark("sandbox")
        sandbox = container.startPhases
    }

    var metadata: Logger.Metadata {
        var m: Logger.Metadata = ["start_ms": "\(Self.millis(Double(last - began) / 1e9))"]
        for p in phases { m[p.name + "_ms"] = "\(Self.millis(p.seconds))" }
        return m
    }

    /// Seconds as milliseconds with one decimal, as the log shows them.
    static func millis(_ seconds: Double) -> String { TimedPhase.millisText(seconds) }
}

extension NativeDriver {
    /// The log line of a container that started, its phases for the metrics, and its span
    /// when the call that asked for it is traced.
    func reportStarted(_ task: ContainerTask, format: String, _ phases: StartPhases) {
        logger.info(
            "started a container",
            metadata: task.function.logMetadata(container: task.name).merging(phases.metadata) { $1 }.merging(["format": "\(format)"]) { $1 })
        task.onStartPhases?(phases.phases + phases.sandbox)
        task.trace?.containerStart(phases.phases, container: task.name, sandbox: phases.sandbox)
    }
}
