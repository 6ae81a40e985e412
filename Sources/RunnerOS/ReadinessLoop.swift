import CRunnerShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Waits for non-blocking descriptors (function pipes, and sockets whose writes would block;
/// an event loop reads hot functions' sockets, see NativeRuntime's `FunctionInbox`) on one
/// epoll thread, for any number of tasks at once. A call waiting for its function's answer then holds no thread:
/// two thousand calls in flight are two thousand small entries here, not two thousand blocked
/// threads, and the task does its own reads and writes when woken.
///
/// Each wait arms its descriptor for one event (EPOLLONESHOT) and ends at the event, at its
/// deadline, or when its task is cancelled, whichever comes first. Callers retry their read or
/// write after `.ready`: readiness is a hint, EAGAIN can still follow.
///
/// The same thread also fires timers (`schedule`): the agent's idle and freeze timers, one per
/// idle container and restarted after every call, cost an entry here instead of a task group,
/// a sleeping task and a Dispatch timer each. And it runs watches (`watch`): every container
/// process's pidfd, through `ProcessReaper`, so one thread hears of sockets, pipes, timers and
/// exits alike.
public final class ReadinessLoop: Sendable {
    /// The process-wide loop: one epoll thread, started on first use.
    public static let shared = ReadinessLoop()

    public enum Interest: Sendable {
        case readable, writable
    }

    /// How a wait ended.
    public enum Outcome: Sendable, Equatable {
        case ready, timedOut, cancelled
    }

    private enum Waiter {
        case task(CheckedContinuation<Result<Outcome, RunnerError>, Never>)
        /// A timer or a watch: runs on the loop's thread, so it must be short.
        case action(@Sendable (Outcome) -> Void)

        func end(_ outcome: Outcome) {
            switch self {
            case .task(let c): c.resume(returning: .success(outcome))
            case .action(let run): run(outcome)
            }
        }
    }

    /// A timer's handle: `cancel` makes sure it does not fire (unless it is firing already).
    public struct Timer: Sendable {
        fileprivate let loop: ReadinessLoop
        fileprivate let token: UInt64

        /// Idempotent.
        public func cancel() { loop.state.withLock { _ = $0.waiters.removeValue(forKey: token) } }
    }

    private struct State {
        var epollFD: Int32 = -1
        var wakeFD: Int32 = -1
        var waiters: [UInt64: Waiter] = [:]
        var deadlines = DeadlineHeap()
        /// When the loop's epoll_wait times out at the latest (MonotonicClock): a wait whose
        /// deadline is later needs no wake-up write, which keeps the usual call free of one.
        var sleepingUntil: UInt64 = 0
    }

    private static let wakeToken: UInt64 = 1
    /// The longest the loop sleeps: the common wait (a deadline seconds away) then never has to
    /// wake it to shorten its sleep.
    static let longestSleepNanos: UInt64 = 1_000_000_000

    private let state = Mutex(State())
    /// Token 1 is the wake-up eventfd. Taken without the lock: a wait locks once, to enroll.
    private let nextToken = Atomic<UInt64>(2)

    public init() {}

    /// The number of waits and timers in progress.
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Runs `fire` on the loop's thread at `deadlineNanos` (MonotonicClock), unless cancelled
    /// first. `fire` must not block: it is meant to resume a waiter. When the loop cannot start
    /// (no epoll set or eventfd), the timer fires at once, so a waiter never waits forever.
    public func schedule(atNanos deadlineNanos: UInt64, _ fire: @escaping @Sendable () -> Void) -> Timer {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        do throws(RunnerError) {
            try enroll(token, .action { if $0 == .timedOut { fire() } }, deadline: deadlineNanos)
        } catch {
            fire()
        }
        return Timer(loop: self, token: token)
    }

    /// Calls `ready` once, on the loop's thread, when `fd` is ready for `interest`: a watch with
    /// no task and no deadline, for a descriptor the runner only needs to hear from once (a
    /// process's pidfd, readable at its exit). The caller keeps `fd` open until then. `ready`
    /// must be short and must not block.
    public func watch(_ fd: Int32, for interest: Interest, _ ready: @escaping @Sendable () -> Void) throws(RunnerError) {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        try enroll(token, .action { if $0 == .ready { ready() } }, arming: (fd, interest))
    }

    /// Waits until `fd` (non-blocking, owned by the caller and kept open meanwhile) is ready
    /// for `interest`, until `deadlineNanos` (MonotonicClock), or until the task is cancelled.
    /// Throws only when the descriptor cannot be watched at all (epoll refuses it).
    public func wait(for interest: Interest, on fd: Int32, deadlineNanos: UInt64) async throws(RunnerError) -> Outcome {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Result<Outcome, RunnerError>, Never>) in
                do throws(RunnerError) {
                    try enroll(token, .task(c), arming: (fd, interest), deadline: deadlineNanos)
                } catch {
                    c.resume(returning: .failure(error))
                }
                if Task.isCancelled { finish(token, .cancelled) }
            }
        } onCancel: {
            finish(token, .cancelled)
        }
        return try result.get()
    }

    /// The one way in for waits, watches and timers: starts the loop if needed, arms `arming`'s
    /// descriptor for one event, adds `deadline` to the heap, and wakes the loop when it sleeps
    /// past that deadline. Nothing is enrolled when it throws.
    private func enroll(_ token: UInt64, _ waiter: Waiter, arming: (fd: Int32, interest: Interest)? = nil, deadline: UInt64? = nil)
        throws(RunnerError)
    {
        let wakeFD = try state.withLock { s throws(RunnerError) -> Int32 in
            if s.epollFD < 0, let error = start(&s) { throw error }
            if let (fd, interest) = arming {
                let rc = rn_epoll_arm(s.epollFD, fd, interest == .writable ? 1 : 0, token)
                if rc < 0 { throw .system("epoll_ctl", errno: -rc, "cannot wait for descriptor \(fd)") }
            }
            s.waiters[token] = waiter
            guard let deadline else { return -1 }
            push(&s, deadline, token)
            return deadline < s.sleepingUntil ? s.wakeFD : -1
        }
        if wakeFD >= 0 { wake(wakeFD) }
    }

    /// Adds a deadline, dropping those of ended waits once they outnumber the live ones.
    private func push(_ s: inout State, _ deadline: UInt64, _ token: UInt64) {
        s.deadlines.push(deadline, token)
        if s.deadlines.count > 2 * s.waiters.count + 1024 {
            let waiters = s.waiters
            s.deadlines.rebuild { waiters[$0.token] != nil }
        }
    }

    /// Makes the loop's epoll_wait return, to sleep again until the earliest deadline.
    private func wake(_ wakeFD: Int32) {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Creates the epoll set and its wake-up eventfd and starts the thread; under the lock.
    private func start(_ s: inout State) -> RunnerError? {
        let epfd = rn_epoll_create()
        if epfd < 0 { return .system("epoll_create1", errno: -epfd, "cannot create the readiness loop's epoll set") }
        let wake = rn_eventfd()
        if wake < 0 {
            close(epfd)
            return .system("eventfd", errno: -wake, "cannot create the readiness loop's wake-up eventfd")
        }
        let rc = rn_epoll_add(epfd, wake, Self.wakeToken)
        if rc < 0 {
            close(epfd)
            close(wake)
            return .system("epoll_ctl", errno: -rc, "cannot watch the readiness loop's eventfd")
        }
        s.epollFD = epfd
        s.wakeFD = wake
        s.sleepingUntil = MonotonicClock.nowNanos()
        DedicatedThread.start("the readiness loop", name: "fn-readiness") { self.run(epfd: epfd, wakeFD: wake) }
        return nil
    }

    /// Resumes the wait of `token` if it is still waiting.
    private func finish(_ token: UInt64, _ outcome: Outcome) {
        state.withLock { $0.waiters.removeValue(forKey: token) }?.end(outcome)
    }

    /// Resumes the waits among `tokens` that are still waiting.
    private func finish(_ tokens: [UInt64], _ outcome: Outcome) {
        let ended = state.withLock { s in tokens.compactMap { s.waiters.removeValue(forKey: $0) } }
        for w in ended { w.end(outcome) }
    }

    private func run(epfd: Int32, wakeFD: Int32) {
        var tokens = [UInt64](repeating: 0, count: 64)
        while true {
            let (expired, timeoutMillis) = state.withLock { s -> ([Waiter], Int32) in
                let now = MonotonicClock.nowNanos()
                var expired: [Waiter] = []
                while let top = s.deadlines.first, top.deadline <= now {
                    _ = s.deadlines.popFirst()
                    if let w = s.waiters.removeValue(forKey: top.token) { expired.append(w) }
                }
                let until = min(s.deadlines.first?.deadline ?? UInt64.max, now &+ Self.longestSleepNanos)
                s.sleepingUntil = until
                return (expired, Int32((until - now + 999_999) / 1_000_000))
            }
            for w in expired { w.end(.timedOut) }
            let n = tokens.withUnsafeMutableBufferPointer { rn_epoll_wait(epfd, $0.baseAddress, 64, timeoutMillis) }
            if n <= 0 { continue }
            var ready: [UInt64] = []
            ready.reserveCapacity(Int(n))
            for i in 0..<Int(n) {
                if tokens[i] == Self.wakeToken {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                } else {
                    ready.append(tokens[i])
                }
            }
            if !ready.isEmpty { finish(ready, .ready) }
        }
    }
}
