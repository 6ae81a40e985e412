import CRunnerShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reaps container processes through their pidfds on one dedicated thread.
///
/// Why a thread of its own: thousands of hot containers can be alive at once, and waiting for
/// each on a cooperative-pool thread (or polling) would not scale. One epoll set over all pidfds
/// costs nothing while containers run and reports each exit as soon as the kernel does.
/// Only processes registered here are reaped (waitid(P_PIDFD)), never anyone else's children.
public final class ProcessReaper: Sendable {
    /// The process-wide reaper. There is one epoll thread per process.
    public static let shared = ProcessReaper()

    private struct Entry {
        var pidfd: Int32
        var onExit: @Sendable (ProcessExit) -> Void
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextToken: UInt64 = 1
        var threadStarted = false
        var epollFD: Int32 = -1
    }

    private let state = Mutex(State())

    private init() {}

    /// Calls `onExit` once, on the reaper thread, when the process behind `pidfd` has exited and
    /// been reaped. The caller keeps ownership of `pidfd` and must not close it before then.
    public func watch(pidfd: Int32, onExit: @escaping @Sendable (ProcessExit) -> Void) throws(RunnerError) {
        let result: Result<Void, RunnerError> = state.withLock { s in
            if s.epollFD < 0 {
                let fd = rn_epoll_create()
                if fd < 0 { return .failure(.system("epoll_create1", errno: -fd, "cannot create the reaper's epoll set")) }
                s.epollFD = fd
            }
            let token = s.nextToken
            s.nextToken += 1
            s.entries[token] = Entry(pidfd: pidfd, onExit: onExit)
            let rc = rn_epoll_add(s.epollFD, pidfd, token)
            if rc < 0 {
                s.entries[token] = nil
                return .failure(.system("epoll_ctl", errno: -rc, "cannot watch pidfd \(pidfd)"))
            }
            if !s.threadStarted {
                s.threadStarted = true
                startThread()
            }
            return .success(())
        }
        try result.get()
    }

    private func startThread() { DedicatedThread.start("the process reaper", name: "fn-reaper") { self.run() } }

    private func run() {
        let epfd = state.withLock { $0.epollFD }
        var tokens = [UInt64](repeating: 0, count: 64)
        while true {
            let n = tokens.withUnsafeMutableBufferPointer { rn_epoll_wait(epfd, $0.baseAddress, 64, -1) }
            if n < 0 { continue }
            for i in 0..<Int(n) { reap(token: tokens[i]) }
        }
    }

    private func reap(token: UInt64) {
        guard let entry = state.withLock({ $0.entries[token] }) else { return }
        var code: Int32 = 0
        var kind: Int32 = 0
        let rc = rn_pidfd_wait(entry.pidfd, 1, &code, &kind)
        if rc == 0 { return }  // readable but not yet reapable: wait for the next event
        let exit: ProcessExit
        if rc < 0 {
            // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN). The status is lost.
            exit = .signaled(SIGKILL)
        } else {
            exit = kind == 0 ? .exited(code) : .signaled(code)
        }
        state.withLock { s in
            _ = rn_epoll_del(s.epollFD, entry.pidfd)
            s.entries[token] = nil
        }
        entry.onExit(exit)
    }
}
