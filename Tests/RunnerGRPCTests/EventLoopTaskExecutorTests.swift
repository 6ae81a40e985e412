import Dispatch
import NIOCore
import NIOPosix
import LoopExecutors
import Testing

/// Where both edges' hot calls run: a call's own task on the loop it was pinned to, whoever
/// wakes it.
struct EventLoopTaskExecutorTests {
    /// Runs `body` with a two-loop group of its own, shut down afterwards whatever happens.
    func withGroup(_ body: (MultiThreadedEventLoopGroup, [any EventLoop]) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do {
            try await body(group, Array(group.makeIterator()))
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    /// Suspends until `wake` resumes the task from wherever it runs the closure it is given.
    func wokenBy(_ wake: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in wake { c.resume() } }
    }

    @Test func aTaskPinnedToALoopRunsThereWhoeverWakesIt() async throws {
        try await withGroup { _, loops in
            let pinned = EventLoopTaskExecutor(loops[0])
            let task = Task(executorPreference: pinned) { () async -> [Bool] in
                var places = [loops[0].inEventLoop]
                await wokenBy { resume in DispatchQueue.global().async(execute: resume) }
                places.append(loops[0].inEventLoop)
                await wokenBy { resume in loops[1].execute(resume) }
                places.append(loops[0].inEventLoop)
                return places
            }
            #expect(await task.value == [true, true, true])
        }
    }
}
