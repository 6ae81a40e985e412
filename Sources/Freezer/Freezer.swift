import CgroupDriver
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Freezes and thaws every process of a container's cgroup.
///
/// Idle hot containers are frozen so they cost no CPU; the call path thaws them first, so thaw
/// latency is call latency. On cgroup v2 (also the v2 tree of a hybrid host) a freeze of one
/// process takes ~10 µs, so the state is re-read right after the write instead of sleeping on
/// poll (whose wake-up tail is milliseconds); v1's freezer.state is the fallback.
public struct Freezer: Sendable {
    public enum Backend: Sendable, Equatable {
        /// cgroup.freeze + cgroup.events in this directory.
        case v2(String)
        /// freezer.state in this v1 freezer directory.
        case v1(String)
    }

    public enum State: String, Sendable {
        case thawed, freezing, frozen
    }

    /// How a freeze or thaw went: the time from the write until the kernel reported the state.
    public struct Transition: Sendable {
        public var latencyNanos: UInt64
    }

    public let backend: Backend

    public init(backend: Backend) { self.backend = backend }

    /// Picks the v2 files when the container's v2 directory has them, else the v1 freezer.
    public init(cgroup: CgroupSet) throws(RunnerError) {
        if let v2 = cgroup.v2Path, FileSystem.exists(v2 + "/cgroup.freeze") {
            backend = .v2(v2)
        } else if let v1 = cgroup.v1Paths["freezer"] {
            backend = .v1(v1)
        } else {
            throw RunnerError(
                .unsupported, "no cgroup freezer for \(cgroup): neither cgroup.freeze (v2) nor a v1 freezer hierarchy",
                step: "freezer")
        }
    }

    @discardableResult
    public func freeze(timeoutMillis: Int = 2000) throws(RunnerError) -> Transition {
        try transition(to: .frozen, timeoutMillis: timeoutMillis)
    }

    @discardableResult
    public func thaw(timeoutMillis: Int = 2000) throws(RunnerError) -> Transition {
        try transition(to: .thawed, timeoutMillis: timeoutMillis)
    }

    /// Thaws without ever sleeping: asks, then re-reads the state up to `spins` times. nil when
    /// the kernel has not confirmed by then; `thaw(timeoutMillis:)` then waits for the rest, on
    /// a thread that may block. A call thaws its container on the thread that serves it (an
    /// event loop, the cooperative pool), where a thaw's usual microseconds are fine and the
    /// backed-off sleeps of a slow one are not.
    public func thawWithoutSleeping(spins: Int = 50) throws(RunnerError) -> Transition? {
        let start = MonotonicClock.nowNanos()
        try ask(.thawed)
        for _ in 0..<max(1, spins) where try reached(.thawed) {
            return Transition(latencyNanos: MonotonicClock.nowNanos() - start)
        }
        return nil
    }

    /// The state the kernel reports now.
    public func state() throws(RunnerError) -> State {
        switch backend {
        case .v2(let path):
            let events = CgroupFileFormat.keyValues(try FileSystem.read(path + "/cgroup.events"))
            if events["frozen"] == 1 { return .frozen }
            let requested = try FileSystem.read(path + "/cgroup.freeze").trimmed
            return requested == "1" ? .freezing : .thawed
        case .v1(let path):
            switch try FileSystem.read(path + "/freezer.state").trimmed {
            case "FROZEN": return .frozen
            case "FREEZING": return .freezing
            default: return .thawed
            }
        }
    }

    /// Whether the kernel reports `target`: for v2 `frozen` in cgroup.events alone decides.
    private func reached(_ target: State) throws(RunnerError) -> Bool {
        switch backend {
        case .v2(let path):
            let frozen = CgroupFileFormat.keyValues(try FileSystem.read(path + "/cgroup.events"))["frozen"] == 1
            return frozen == (target == .frozen)
        case .v1:
            return try state() == target
        }
    }

    private func ask(_ target: State) throws(RunnerError) {
        switch backend {
        case .v2(let path): try FileSystem.write(path + "/cgroup.freeze", target == .frozen ? "1" : "0")
        case .v1(let path): try FileSystem.write(path + "/freezer.state", target == .frozen ? "FROZEN" : "THAWED")
        }
    }

    private func transition(to target: State, timeoutMillis: Int) throws(RunnerError) -> Transition {
        let start = MonotonicClock.nowNanos()
        let deadline = start + UInt64(timeoutMillis) * 1_000_000
        try ask(target)
        var spins = 0
        var delay: UInt32 = 20
        while try !reached(target) {
            let now = MonotonicClock.nowNanos()
            if now > deadline {
                let verb = target == .frozen ? "freeze" : "thaw"
                throw RunnerError(
                    .timeout, "cgroup did not \(verb) within \(timeoutMillis) ms (\(backend))", step: verb)
            }
            // Re-read at once for the common microsecond case; back off only if it takes longer.
            spins += 1
            if spins > 50 {
                usleep(delay)
                delay = min(delay * 2, 5000)
            }
            if target == .frozen, case .v1(let path) = backend, spins % 64 == 0 {
                // v1 can stay in FREEZING if a task was busy when asked; asking again is the documented retry.
                try FileSystem.write(path + "/freezer.state", "FROZEN")
            }
        }
        return Transition(latencyNanos: MonotonicClock.nowNanos() - start)
    }
}
