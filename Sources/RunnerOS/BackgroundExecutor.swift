import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs the jobs of the tasks that prefer it on one thread of its own, at a lower CPU priority
/// (a higher nice value) than the rest of the process: for bookkeeping, such as writing call
/// records, that must not push the event loop aside when both want the same CPU.
///
/// Why a nice value: under load the scheduler lets a thread that wakes after a sleep preempt a
/// busy one that has used more than its share, and the event loop always has. A batch of call
/// records took a CPU from the loop for up to 3.5 ms at a time, while every client waited
/// (scheduler trace under `wrk -c8`). At nice +10 the thread weighs a tenth of the loop, so it
/// runs in the loop's gaps, yet it is never starved: the kernel still gives it its share.
///
/// Jobs may block (the thread is made for it, not one of Swift's cooperative pool), but they
/// then hold up every later job.
public final class BackgroundExecutor: TaskExecutor, Sendable {
    /// The call records' writer.
    public static let records = BackgroundExecutor(name: "fn-records", niceIncrement: 10)

    private struct Queue {
        var jobs: [UnownedJob] = []
        var started = false
    }
    private let queue = Mutex(Queue())
    private let ready = Semaphore()
    private let name: String
    private let niceIncrement: Int32
    /// The thread's nice value once it is set (nil until the thread runs, or when it cannot be
    /// set: the jobs then run at the process's priority).
    private let nice = Mutex<Int32?>(nil)

    /// `name`: the thread's (at most 15 bytes); `niceIncrement`: how far below the process's
    /// priority it runs (the nice value is capped at 19).
    public init(name: String, niceIncrement: Int32) {
        self.name = name
        self.niceIncrement = niceIncrement
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let start = queue.withLock { q in
            q.jobs.append(job)
            defer { q.started = true }
            return !q.started
        }
        if start { DedicatedThread.start("the background executor \(name)", name: name) { self.run() } }
        ready.post()
    }

    /// The nice value the jobs run at, once the thread has started (nil before, or if it could
    /// not be lowered).
    public var threadNice: Int32? { nice.withLock { $0 } }

    private func run() {
        lowerPriority()
        while true {
            ready.waitForever()
            // One wait per job posted: taking them all leaves the next waits to find none.
            let jobs = queue.withLock { q in
                defer { q.jobs = [] }
                return q.jobs
            }
            for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }

    /// Linux keeps a nice value per thread, and `who` 0 is the calling one: this thread alone
    /// is lowered.
    private func lowerPriority() {
        #if canImport(Glibc)
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        #else
        let which = PRIO_PROCESS
        #endif
        errno = 0
        let current = getpriority(which, 0)
        if current == -1 && errno != 0 { return }
        let target = min(19, current + niceIncrement)
        guard setpriority(which, 0, target) == 0 else { return }
        nice.withLock { $0 = target }
    }
}
