import CRunnerShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reaps container processes through their pidfds, on the readiness loop.
///
/// Thousands of hot containers can be alive at once, and waiting for each on a thread (or
/// polling) would not scale. A pidfd turns readable when its process exits, so each one is a
/// watch of `ReadinessLoop.shared` (the same epoll thread as the function sockets, pipes and
/// timers), which costs nothing while the container runs and reports the exit as soon as the
/// kernel does. Only processes registered here are reaped (waitid(P_PIDFD)), never anyone
/// else's children.
public final class ProcessReaper: Sendable {
    /// The process-wide reaper.
    public static let shared = ProcessReaper()

    /// How soon a process whose pidfd was readable but which could not be reaped yet is looked
    /// at again (a process whose last thread is still on its way out).
    static let retryNanos: UInt64 = 1_000_000

    private init() {}

    /// Calls `onExit` once, on the readiness loop's thread, when the process behind `pidfd` has
    /// exited and been reaped. The caller keeps ownership of `pidfd` and must not close it
    /// before then. `onExit` must be short.
    public func watch(pidfd: Int32, onExit: @escaping @Sendable (ProcessExit) -> Void) throws(RunnerError) {
        try ReadinessLoop.shared.watch(pidfd, for: .readable) { self.reap(pidfd, onExit) }
    }

    private func reap(_ pidfd: Int32, _ onExit: @escaping @Sendable (ProcessExit) -> Void) {
        var code: Int32 = 0
        var kind: Int32 = 0
        let rc = rn_pidfd_wait(pidfd, 1, &code, &kind)
        if rc == 0 {
            // Readable but not yet reapable: look again shortly (re-arming at once would only
            // report the same readiness again).
            _ = ReadinessLoop.shared.schedule(atNanos: MonotonicClock.nowNanos() &+ Self.retryNanos) { self.reap(pidfd, onExit) }
            return
        }
        // rc < 0: ECHILD, someone else reaped it (SIGCHLD set to SIG_IGN), or it is not our
        // child (an adopted process). The status is lost.
        onExit(rc < 0 ? .signaled(SIGKILL) : kind == 0 ? .exited(code) : .signaled(code))
    }
}
