import CRunnerShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Waits for a child process (one this process spawned and has not reaped) to end without
/// holding a thread: its pidfd turns readable at the exit (`ReadinessLoop`), and only then is it
/// reaped. A blocking waitpid on Swift's cooperative pool would stall every task for as long as
/// the child runs.
public enum ChildExit {
    /// The raw wait status (as from waitpid), or nil if `pid` is not a child that can be waited
    /// for.
    public static func wait(pid: pid_t) async -> Int32? {
        let pidfd = rn_pidfd_open(pid)
        if pidfd >= 0 {
            defer { close(pidfd) }
            _ = try? await ReadinessLoop.shared.wait(for: .readable, on: pidfd, deadlineNanos: .max)
        }
        // Readable means it has exited; only after a cancelled wait can this still block.
        var raw: Int32 = 0
        while true {
            if waitpid(pid, &raw, 0) >= 0 { return raw }
            if errno != EINTR { return nil }
        }
    }
}
