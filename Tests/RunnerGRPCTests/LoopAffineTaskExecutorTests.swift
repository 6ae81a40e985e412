import Dispatch
import NIOCore
import NIOPosix
import LoopExecutors
import RunnerGRPC
import Testing

/// Where the gRPC edge's tasks run: on the loop that woke them, so a stream's handler stays on
/// its connection's loop, and a call's own task on the loop it was pinned to.
struct LoopAffineTaskExecutorTests {
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

    @Test func aTaskWokenByOneOfTheGroupsLoopsGoesOnRunningOnThatLoop() async throws {
        try await withGroup { group, loops in
            let executor = LoopAffineTaskExecutor(group)
            // Round robin (the fallback) would put some of these on the other loop.
            for round in 0..<20 {
                let loop = loops[round % loops.count]
                let stayed = await withTaskExecutorPreference(executor) { () async -> Bool in
                    await wokenBy { resume in loop.execute(resume) }
                    return loop.inEventLoop
                }
                #expect(stayed, "round \(round)")
            }
        }
    }

    @Test func aTaskWokenByAThreadOutsideTheGroupRunsOnOneOfTheGroupsLoops() async throws {
        try await withGroup { group, loops in
            let executor = LoopAffineTaskExecutor(group)
            for _ in 0..<10 {
                let onAGroupLoop = await withTaskExecutorPreference(executor) { () async -> Bool in
                    await wokenBy { resume in DispatchQueue.global().async(execute: resume) }
                    return loops.contains { $0.inEventLoop }
                }
                #expect(onAGroupLoop)
            }
        }
    }

    @Test func pinnedHereIsTheExecutorOfTheLoopThatAsksAndNilOffTheGroup() async throws {
        try await withGroup { group, loops in
            let executor = LoopAffineTaskExecutor(group)
            #expect(executor.pinnedHere == nil)
            for loop in loops {
                let pinnedLoop = try await loop.submit { executor.pinnedHere?.loop }.get()
                #expect(pinnedLoop === loop)
            }
            let elsewhere = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let foreign = try await elsewhere.next().submit { executor.pinnedHere == nil }.get()
            try await elsewhere.shutdownGracefully()
            #expect(foreign, "a loop of another group is not one of this group's")
        }
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
