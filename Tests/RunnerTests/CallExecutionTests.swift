@testable import Runner
import RunnerOS
import Synchronization
import TestSupport
import Testing

/// The events both edges translate (`Agent.execute`), on the fake driver.
struct CallExecutionTests {
    typealias H = FakeAgentHarness

    /// An event as text, so a whole sequence compares in one expectation.
    static func describe(_ event: CallEvent?) -> String {
        switch event {
        case .head(let r, let complete)?: "head \(r.status) \(complete ? "whole" : "streams") \(H.text(r).split(separator: ":").last ?? "")"
        case .body(let bytes)?: "body \(String(decoding: bytes, as: UTF8.self))"
        case .end(nil)?: "end"
        case .end(let e?)?: "end \(e.code)"
        case nil: "nil"
        }
    }

    func events(_ agent: Agent, _ body: String, stream: ResponseStream? = ResponseStream()) async throws -> ([String], Call) {
        let call = try agent.makeCall(H.function(), H.request(body), stream: stream)
        let execution = agent.execute(call)
        var seen: [String] = []
        while let event = await execution.next() { seen.append(Self.describe(event)) }
        seen.append(Self.describe(await execution.next()))
        return (seen, call)
    }

    @Test func aWholeAnswerIsItsHeadThenItsEnd() async throws {
        try await H.withAgent { agent, _, _ in
            let (seen, call) = try await events(agent, "hello")
            #expect(seen == ["head 200 whole hello", "end", "nil"])
            #expect(call.status == .success)
        }
    }

    @Test func aStreamedAnswerIsItsHeadItsChunksInOrderThenItsEnd() async throws {
        try await H.withAgent { agent, _, _ in
            let (seen, call) = try await events(agent, "stream:3")
            // The chunks may arrive merged, never reordered or lost.
            let chunks = seen.dropFirst().dropLast(2).map { $0.dropFirst(5) }.joined()
            #expect(seen.first == "head 200 streams head" && chunks == "c0c1c2" && seen.suffix(2) == ["end", "nil"], "\(seen)")
            #expect(call.status == .success)
        }
    }

    @Test func aCallWithoutAStreamNeverStreams() async throws {
        try await H.withAgent { agent, _, _ in
            let (seen, _) = try await events(agent, "stream:2", stream: nil)
            #expect(seen.count == 3 && seen.first?.hasPrefix("head 200 whole") == true && seen.suffix(2) == ["end", "nil"], "\(seen)")
        }
    }

    @Test func aFunctionThatFailsBeforeAnsweringGivesOnlyTheEndWithItsError() async throws {
        try await H.withAgent { agent, _, _ in
            let (seen, call) = try await events(agent, "status:502")
            #expect(seen == ["end \(RunnerError.Code.functionFailed)", "nil"])
            #expect(call.status == .error)
        }
    }

    @Test func aFunctionThatBreaksMidAnswerEndsWithTheErrorAfterItsHead() async throws {
        try await H.withAgent { agent, _, _ in
            let (seen, call) = try await events(agent, "stream-crash:2")
            #expect(seen.first == "head 200 streams head" && seen.suffix(2) == ["end \(RunnerError.Code.functionResponse)", "nil"], "\(seen)")
            #expect(call.status == .error)
        }
    }

    @Test func cancellingMidAnswerEndsTheCallAsCancelledAndStillEndsTheEvents() async throws {
        try await H.withAgent { agent, driver, _ in
            // A small stream: the endless function waits for the consumer, like a slow client.
            let call = try agent.makeCall(H.function(), H.request("stream-endless"), stream: ResponseStream(limitBytes: 8))
            let execution = agent.execute(call)
            #expect(Self.describe(await execution.next()) == "head 200 streams head")
            #expect(Self.describe(await execution.next()).hasPrefix("body c0"))
            execution.cancel()
            var rest: [String] = []
            while let event = await execution.next() { rest.append(Self.describe(event)) }
            #expect(rest.last == "end \(RunnerError.Code.callCancelled)", "\(rest)")
            #expect(call.status == .cancelled)
            // The container is not lost: the next call runs.
            #expect(H.text(try await agent.submit(H.function(), H.request("after"))).hasSuffix(":after"))
            #expect(driver.containers.allSatisfy { $0.overlaps == 0 })
        }
    }

    @Test func cancelAndWaitReturnsOnlyOnceTheCallIsRecorded() async throws {
        try await H.withAgent { agent, _, _ in
            let call = try agent.makeCall(H.function(), H.request("stream-endless"), stream: ResponseStream(limitBytes: 8))
            let execution = agent.execute(call)
            _ = await execution.next()
            await execution.cancelAndWait()
            #expect(call.status == .cancelled)
            #expect(Self.describe(await execution.next()) == "nil")
        }
    }

    // MARK: the same events handed to a sink, the call run in the caller's task

    /// Collects what it is handed; fails the body chunk numbered `failing` (from 1) as a client
    /// that went away.
    final class Collector: CallEventSink {
        let seen = Mutex<[String]>([])
        let failing: Int?
        init(failing: Int? = nil) { self.failing = failing }

        func deliver(_ event: CallEvent, deadlineNanos: UInt64) async throws(RunnerError) {
            let bodies = seen.withLock { seen in
                seen.append(CallExecutionTests.describe(event))
                return seen.count { $0.hasPrefix("body") }
            }
            if case .body = event, bodies == failing { throw CallErrors.cancelled("stream response") }
        }
    }

    /// Chunks may be merged by one mode and not the other: their text is compared joined.
    static func merged(_ events: [String]) -> [String] {
        var out: [String] = []
        for e in events where e != "nil" {
            if e.hasPrefix("body "), let last = out.last, last.hasPrefix("body ") {
                out[out.count - 1] = last + e.dropFirst(5)
            } else {
                out.append(e)
            }
        }
        return out
    }

    @Test(arguments: ["hello", "stream:3", "status:502", "stream-crash:2"])
    func aSinkIsHandedTheEventsExecuteGivesInTheSameOrder(body: String) async throws {
        try await H.withAgent { agent, _, _ in
            let (pulled, pulledCall) = try await events(agent, body)
            let sink = Collector()
            let call = try agent.makeCall(H.function(), H.request(body), stream: ResponseStream(delivering: sink))
            await agent.run(call, deliveringTo: sink)
            let pushed = sink.seen.withLock { $0 }
            #expect(Self.merged(pushed) == Self.merged(pulled), "pushed \(pushed), pulled \(pulled)")
            #expect(call.status == pulledCall.status)
        }
    }

    @Test func aCallRunWithoutAStreamHandsItsWholeAnswerThenItsEnd() async throws {
        try await H.withAgent { agent, _, _ in
            let sink = Collector()
            await agent.run(try agent.makeCall(H.function(), H.request("stream:2")), deliveringTo: sink)
            let seen = sink.seen.withLock { $0 }
            #expect(seen.count == 2 && seen.first?.hasPrefix("head 200 whole") == true && seen.last == "end", "\(seen)")
        }
    }

    @Test func aSinkWhoseClientLeftEndsTheCallAsCancelledAndTheContainerServesOn() async throws {
        try await H.withAgent { agent, driver, _ in
            let sink = Collector(failing: 2)
            let call = try agent.makeCall(H.function(), H.request("stream-endless"), stream: ResponseStream(delivering: sink))
            await agent.run(call, deliveringTo: sink)
            let seen = sink.seen.withLock { $0 }
            #expect(seen.first == "head 200 streams head" && seen.last == "end \(RunnerError.Code.callCancelled)", "\(seen)")
            #expect(call.status == .cancelled)
            #expect(H.text(try await agent.submit(H.function(), H.request("after"))).hasSuffix(":after"))
            #expect(driver.containers.allSatisfy { $0.overlaps == 0 })
        }
    }

    @Test func cancellingTheTaskThatRunsACallEndsItAsCancelledAndStillHandsItsEnd() async throws {
        try await H.withAgent { agent, _, _ in
            let sink = Collector()
            let call = try agent.makeCall(H.function(), H.request("stream-endless"), stream: ResponseStream(delivering: sink))
            let running = Task { await agent.run(call, deliveringTo: sink) }
            while sink.seen.withLock({ $0.count { $0.hasPrefix("body") } }) < 3 { await Task.yield() }
            running.cancel()
            await running.value
            #expect(sink.seen.withLock { $0.last } == "end \(RunnerError.Code.callCancelled)")
            #expect(call.status == .cancelled)
        }
    }
}
