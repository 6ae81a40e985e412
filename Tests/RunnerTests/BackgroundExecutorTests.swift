import Foundation
import RunnerOS
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Bookkeeping runs on a thread of its own below the process's priority, so it never pushes
/// the event loop aside: every job runs, on that one thread, at the lowered nice value.
@Suite(.timeLimit(.minutes(2)))
struct BackgroundExecutorTests {
    /// The calling thread's id and nice value (Linux keeps one per thread).
    static func whereAmI() -> (tid: String, nice: Int32) {
        let tid = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? "?"
        #if canImport(Glibc)
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        #else
        let which = PRIO_PROCESS
        #endif
        return (tid, getpriority(which, 0))
    }

    @Test func aTaskPreferringTheExecutorRunsOnItsThreadTenNiceStepsBelowTheCaller() async throws {
        let executor = BackgroundExecutor(name: "fn-test-bg", niceIncrement: 10)
        let caller = Self.whereAmI()
        let first = await withTaskExecutorPreference(executor) { Self.whereAmI() }
        let second = await withTaskExecutorPreference(executor) { () async -> (tid: String, nice: Int32) in
            await Task.yield()  // resumed by the executor, not run inline by the caller
            return Self.whereAmI()
        }
        #expect(first.tid != caller.tid, "the job ran on the executor's thread, not the caller's")
        #expect(first.tid == second.tid, "one thread runs every job")
        #expect(first.nice == min(19, caller.nice + 10))
        #expect(executor.threadNice == first.nice)
    }

    @Test func theNiceValueStopsAtNineteen() async throws {
        let executor = BackgroundExecutor(name: "fn-test-bg19", niceIncrement: 40)
        let nice = await withTaskExecutorPreference(executor) { Self.whereAmI().nice }
        #expect(nice == 19)
        #expect(executor.threadNice == 19)
    }

    @Test func everyJobOfManyTasksEnqueuedAtOnceRuns() async throws {
        let executor = BackgroundExecutor(name: "fn-test-bgmany", niceIncrement: 1)
        final class Count: Sendable { let value = Atomic(0) }
        let ran = Count()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<500 {
                group.addTask(executorPreference: executor) {
                    await Task.yield()
                    ran.value.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(ran.value.load(ordering: .relaxed) == 500)
    }
}
