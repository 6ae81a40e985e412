import CRunnerShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs long blocking work (a call to a function, a registry download, a layer unpack) on a
/// thread of its own, so it never occupies one of the few threads of Swift's cooperative pool.
///
/// Threads are kept for a while after their work is done and reused: creating a thread costs
/// tens of microseconds, which would show on every start. At most `maxThreads` exist; more work
/// than that waits its turn, so a burst of two thousand container starts does not become two
/// thousand threads. (Calls to functions do not come here: they wait on `ReadinessLoop`.) Work
/// run here must never wait for other work run here.
public enum BlockingThread {
    private final class Work: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    private struct Pool {
        var queue: [Work] = []
        var busy = 0
        var threads = 0
    }

    private static let pool = Mutex(Pool())
    private static let signal = Semaphore()
    /// Idle threads end after this long without work.
    static let keepAliveSeconds = 30
    /// The most threads at once: four per CPU (a start waits in the kernel part of the time, a
    /// pull mostly on the network), at least 4 and at most 16, so the whole process stays at a
    /// few dozen threads however many calls are in flight.
    public static let maxThreads = min(16, max(4, 4 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    /// Threads alive now (busy or idle), for tests and metrics.
    public static var threads: Int { pool.withLock { $0.threads } }

    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws(RunnerError) -> T) async throws(RunnerError) -> T {
        let result: Result<T, RunnerError> = await withCheckedContinuation { (c: CheckedContinuation<Result<T, RunnerError>, Never>) in
            let work = Work {
                do throws(RunnerError) { c.resume(returning: .success(try body())) } catch { c.resume(returning: .failure(error)) }
            }
            // One semaphore post per queued item; a new thread only when the existing ones are
            // all busy or already spoken for. (Both decided under the lock a leaving thread takes.)
            let needThread = pool.withLock { p -> Bool in
                p.queue.append(work)
                guard p.busy + p.queue.count > p.threads, p.threads < maxThreads else { return false }
                p.threads += 1
                return true
            }
            signal.post()
            if needThread {
                var thread = pthread_t()
                let rc = pthread_create(&thread, nil, { _ in
                    DedicatedThread.setName("fn-blocking")
                    BlockingThread.workerLoop()
                    return nil
                }, nil)
                if rc == 0 {
                    pthread_detach(thread)
                } else {
                    pool.withLock { $0.threads -= 1 }  // an existing thread takes the work when free
                }
            }
        }
        return try result.get()
    }

    private static func workerLoop() {
        while true {
            if !signal.wait(seconds: keepAliveSeconds) {
                let leave = pool.withLock { p -> Bool in
                    guard p.queue.isEmpty else { return false }
                    p.threads -= 1
                    return true
                }
                if leave { return }
                continue
            }
            let work = pool.withLock { p -> Work? in
                guard !p.queue.isEmpty else { return nil }
                p.busy += 1
                return p.queue.removeFirst()
            }
            guard let work else { continue }
            work.run()
            pool.withLock { $0.busy -= 1 }
        }
    }
}

/// A counting semaphore (POSIX) with a timed wait, for threads outside Swift's concurrency
/// pool that must block until another thread lets them go on.
public final class Semaphore: @unchecked Sendable {
    private let sem = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    public init() { sem_init(sem, 0, 0) }
    deinit {
        sem_destroy(sem)
        sem.deallocate()
    }
    public func post() { sem_post(sem) }
    /// Blocks until posted, however long that takes.
    public func waitForever() {
        while sem_wait(sem) != 0 && errno == EINTR {}
    }
    /// false on timeout.
    public func wait(seconds: Int) -> Bool { wait(nanoseconds: UInt64(seconds) * 1_000_000_000) }
    /// false on timeout. Measured on CLOCK_MONOTONIC.
    public func wait(nanoseconds: UInt64) -> Bool {
        rn_sem_wait_monotonic(sem, Int64(min(nanoseconds, UInt64(Int64.max)))) == 0
    }
}
