@testable import Runner
import RunnerOS
import Testing

/// The consumer of detached calls on the fake driver: order, the running bound, sync priority,
/// giving calls back when the node is busy or stopping, and the records it leaves.
struct AsyncCallConsumerTests {
    typealias H = FakeAgentHarness

    /// Runs `body` with a consumer draining `queue` through `agent`; stops it afterwards.
    func withConsumer(
        _ agent: Agent, _ queue: MemoryCallQueue, maxRunning: Int = 8, _ body: (AsyncCallConsumer) async throws -> Void
    ) async throws {
        var config = AsyncCallConsumer.Configuration()
        config.maxRunning = maxRunning
        let consumer = AsyncCallConsumer(configuration: config, agent: agent, queue: queue)
        agent.addListener(consumer)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await consumer.run() }
            do {
                try await body(consumer)
            } catch {
                consumer.stop()
                throw error
            }
            consumer.stop()
            try await group.waitForAll()
        }
    }

    func detached(_ agent: Agent, _ f: FunctionDefinition, _ body: String) throws -> Call {
        try agent.makeCall(f, H.request(body), type: Call.detached)
    }

    @Test func detachedCallsRunOldestFirstAtMostMaxRunningAtATimeAndTheirAnswersGoToTheLog() async throws {
        try await H.withAgent(configure: { $0.freezeIdleMillis = -1 }) { agent, driver, clock in
            let queue = MemoryCallQueue()
            try await withConsumer(agent, queue, maxRunning: 2) { consumer in
                var ids: [String] = []
                for _ in 0..<5 {
                    let call = try detached(agent, H.function(), "sleep:1000")
                    ids.append(call.id)
                    try await consumer.accept(call)
                }
                await eventually("two calls run") { driver.containers.filter { $0.calls == 1 }.count == 2 }
                try await Task.sleep(for: .milliseconds(50))
                #expect(queue.claimedNow == 2 && queue.waitingNow == 3, "no more than two at a time")
                await advance(clock, by: .milliseconds(250), until: "all five ended") { queue.completedCount == 5 }
                #expect(queue.claims == ids, "oldest first")
                #expect(driver.starts == 2, "two containers served the five calls")
                for id in ids {
                    let done = try #require(queue.completed(id))
                    #expect(done.record.status == .success && done.record.type == "detached")
                    #expect(done.log.hasPrefix("HTTP/1.1 200\r\n") && done.log.hasSuffix("slept 1000"), "\(done.log)")
                }
            }
        }
    }

    @Test func aWaitingSyncCallHoldsDetachedCallsBack() async throws {
        try await H.withAgent(totalMemoryMB: 256, configure: { $0.freezeIdleMillis = -1 }) { agent, driver, clock in
            let queue = MemoryCallQueue()
            try await withConsumer(agent, queue) { consumer in
                let fA = H.function("a"), fB = H.function("b"), fC = H.function("c"), fD = H.function("d")
                async let a = agent.submit(fA, H.request("sleep:1000"))
                async let b = agent.submit(fB, H.request("sleep:3000"))
                await eventually("a and b run") { driver.containers.filter { $0.calls == 1 }.count == 2 }
                async let c = agent.submit(fC, H.request("sync"))
                await eventually("c waits for memory") { agent.hasWaitingSyncCalls }
                try await consumer.accept(try detached(agent, fD, "detached"))
                try await Task.sleep(for: .milliseconds(100))
                #expect(queue.claims.isEmpty, "the detached call is not started while a sync call waits")
                await advance(clock, by: .milliseconds(100), until: "the detached call was claimed") { !queue.claims.isEmpty }
                #expect(!agent.hasWaitingSyncCalls && H.running(agent, fC) != nil)
                await advance(clock, by: .milliseconds(250), until: "the detached call ended") { queue.completedCount == 1 }
                await advance(clock, by: .milliseconds(250), until: "b ended") { H.running(agent, fB) == 0 }
                let statuses = try await [a.status, b.status, c.status]
                #expect(statuses == [200, 200, 200])
                #expect(queue.completed(queue.claims[0])?.record.status == .success)
            }
        }
    }

    @Test func aDetachedCallTheNodeIsTooBusyForGoesBackToTheQueueAndRunsLater() async throws {
        try await H.withAgent(totalMemoryMB: 128, configure: { $0.maxWaitMillis = 1000 }) { agent, driver, clock in
            let queue = MemoryCallQueue()
            try await withConsumer(agent, queue) { consumer in
                // a holds the node's memory for 2.5 s of the fake clock: d, waiting at most 1 s
                // each time it is claimed, goes back two or three times, well inside its five
                // attempts however late the consumer reclaims it on a loaded machine.
                async let a = agent.submit(H.function("a"), H.request("sleep:2500"))
                await eventually("a runs") { driver.containers.first?.calls == 1 }
                let d = try detached(agent, H.function("d"), "later")
                try await consumer.accept(d)
                await advance(clock, by: .milliseconds(100), until: "d gave up waiting and went back") { queue.releases.contains(d.id) }
                #expect(queue.completed(d.id) == nil, "a call that never started is not recorded as failed")
                await advance(clock, by: .milliseconds(250), until: "d ran") { queue.completed(d.id) != nil }
                #expect(queue.completed(d.id)?.record.status == .success)
                #expect(try await a.status == 200)
            }
        }
    }

    @Test func aQueuedCallTheNodeCanNeverRunIsRecordedAsAnErrorNotRetried() async throws {
        try await H.withAgent(totalMemoryMB: 256) { agent, driver, _ in
            let queue = MemoryCallQueue()
            try await withConsumer(agent, queue) { consumer in
                // Queued when the node was bigger: the agent refuses it now.
                let call = Call(id: CallID.make(), function: H.function(memoryMB: 4096), request: H.request("x"), type: Call.detached, logLimit: 1000)
                try await queue.enqueue(call)
                consumer.wake()
                await eventually("the call ended") { queue.completed(call.id) != nil }
                let record = try #require(queue.completed(call.id)?.record)
                #expect(record.status == .error && record.errorCode == "resource_too_big" && record.completedAt != nil)
                #expect(queue.releases.isEmpty && driver.starts == 0)
            }
        }
    }

    @Test func shutdownGivesUnstartedDetachedCallsBackToTheQueue() async throws {
        try await H.withAgent(totalMemoryMB: 128) { agent, driver, clock in
            let queue = MemoryCallQueue()
            try await withConsumer(agent, queue) { consumer in
                async let a = agent.submit(H.function("a"), H.request("sleep:5000"))
                await eventually("a runs") { driver.containers.first?.calls == 1 }
                let d = try detached(agent, H.function("d"), "never started")
                try await consumer.accept(d)
                await eventually("d was claimed and waits") { queue.claimedNow == 1 }
                consumer.stop()
                await agent.shutdown()
                await eventually("d went back") { queue.releases == [d.id] }
                #expect(queue.completed(d.id) == nil && queue.waitingNow == 1)
                _ = try? await a
            }
        }
    }

    @Test func claimsOfADeadRunAreQueuedAgainAtStart() async throws {
        try await H.withAgent { agent, _, _ in
            let queue = MemoryCallQueue()
            let call = try detached(agent, H.function(), "again")
            try await queue.enqueue(call)
            _ = try await queue.claim()  // the run that crashed
            try await withConsumer(agent, queue) { _ in
                await eventually("the call ran again") { queue.completed(call.id) != nil }
                #expect(queue.completed(call.id)?.record.status == .success)
                #expect(queue.claims == [call.id, call.id])
            }
        }
    }

    @Test func aDetachedCallThatShutdownInterruptsGoesBackToTheQueue() async throws {
        try await H.withAgent { agent, driver, _ in
            let queue = MemoryCallQueue()
            try await withConsumer(agent, queue) { consumer in
                let d = try detached(agent, H.function("d"), "sleep:5000")
                try await consumer.accept(d)
                await eventually("d runs") { driver.containers.first?.calls == 1 }
                consumer.stop()
                await agent.shutdown()  // grace 0: its container ends mid-call
                await eventually("d went back") { queue.releases == [d.id] }
                #expect(queue.completed(d.id) == nil, "an interrupted call is not its end: it runs again at the next start")
            }
        }
    }

    @Test func aCallClaimedMoreTimesThanAllowedEndsAsAnErrorInsteadOfRunningAgain() async throws {
        try await H.withAgent { agent, driver, _ in
            let queue = MemoryCallQueue()
            let call = try detached(agent, H.function(), "crashes its runner")
            try await queue.enqueue(call)
            for _ in 0..<5 {  // five runs the runner did not survive
                _ = try await queue.claim()
                _ = try await queue.recoverClaims()
            }
            try await withConsumer(agent, queue) { _ in
                await eventually("the call ended") { queue.completed(call.id) != nil }
                let record = try #require(queue.completed(call.id)?.record)
                #expect(record.status == .error && record.error == "given up after 5 runs that the runner did not survive")
                #expect(driver.starts == 0)
            }
        }
    }
}
