@testable import Runner
import RunnerOS
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
}
