import Foundation
import GRPCCore
import Runner
import RunnerGRPC
import RunnerOS
import Synchronization
import TestSupport
import Testing

/// The pure runner as Fn's load balancer uses it, with a Swift client playing the LB.
struct EngageTests {
    typealias H = GRPCHarness

    @Test func aCallIsAnsweredWithItsHeadItsBodyAndFinished() async throws {
        try await H.withRunner { c, _, _ in
            let id = CallID.make()
            let msgs = try await H.engage(c, model: H.model(id: id), body: Array("hi".utf8))
            guard case .resultStart(let start)? = msgs.first?.body else { Issue.record("\(msgs)"); return }
            #expect(start.http.statusCode == 200)
            #expect(start.http.headers.contains { $0.key == "x-fn" && $0.value == "stub" })
            #expect(!start.http.headers.contains { $0.key == "connection" }, "hop-by-hop headers stay here")
            #expect(H.text(msgs) == "echo:hi")
            guard case .finished(let f)? = msgs.last?.body else { Issue.record("\(msgs)"); return }
            #expect(f.success && f.details == id && f.errorCode == 0 && !f.createdAt.isEmpty && !f.completedAt.isEmpty)
            #expect(!msgs.contains { if case .data(let d)? = $0.body { d.eof } else { false } }, "the runner never sends eof")
        }
    }

    @Test func aHotCallRunsOnItsConnectionsEventLoopAndAColdCallOffTheLoops() async throws {
        try await H.withRunner { c, _, _ in
            let hot = try await H.engage(c, model: H.model(), body: Array("where".utf8))
            #expect(H.text(hot) == "loop", "the hot call's own task is pinned to its handler's loop")
            // A cold call's start may block (image lookups under a file lock, the cgroup's removal).
            let cold = try await H.engage(c, model: H.model(format: "default"), body: Array("where".utf8))
            #expect(H.text(cold) == "pool")
        }
    }

    @Test func largeInputArrivesWholeAndLargeOutputLeavesInFramesOfAtMostTenKiB() async throws {
        try await H.withRunner { c, _, _ in
            let input = Array("len".utf8) + [UInt8](repeating: 0x61, count: 1 << 20)
            let counted = try await H.engage(c, body: input, frameBytes: 7_000)
            #expect(H.text(counted) == "len:\(input.count)")
            let big = try await H.engage(c, body: Array("big:300000".utf8))
            let frames = big.compactMap { m -> DataFrame? in if case .data(let d)? = m.body { d } else { nil } }
            #expect(frames.allSatisfy { $0.data.count <= 10 << 10 && !$0.eof })
            #expect(frames.reduce(0) { $0 + $1.data.count } == 300_000)
            if case .finished(let f)? = big.last?.body { #expect(f.success) } else { Issue.record("no finished") }
            // A smaller whole answer goes out in one write: the same frames, in the same order.
            let medium = try await H.engage(c, body: Array("big:30000".utf8))
            let parts = medium.compactMap { m -> DataFrame? in if case .data(let d)? = m.body { d } else { nil } }
            #expect(parts.map(\.data.count) == [10 << 10, 10 << 10, 30_000 - 20 << 10])
            if case .resultStart? = medium.first?.body {} else { Issue.record("no head first") }
            if case .finished(let f)? = medium.last?.body { #expect(f.success) } else { Issue.record("no finished") }
        }
    }

    @Test func aFunctionErrorIsFinishedWith502AndTheUserFlag() async throws {
        try await H.withRunner { c, _, _ in
            let msgs = try await H.engage(c, body: Array("status:502".utf8))
            #expect(msgs.count == 1)
            guard case .finished(let f)? = msgs.last?.body else { Issue.record("\(msgs)"); return }
            #expect(!f.success && f.errorCode == 502 && f.errorUser && f.errorStr == "function failed")
        }
    }

    @Test func aModelWithLimitsOutOfRangeIsFinishedWith400AndTheNodeServesOn() async throws {
        try await H.withRunner { c, _, _ in
            let model = H.model().replacingOccurrences(of: #""timeout":30"#, with: #""timeout":1e16,"cpus":"inf""#)
            let msgs = try await H.engage(c, model: model, body: Array("hi".utf8))
            #expect(msgs.count == 1)
            guard case .finished(let f)? = msgs.last?.body else { Issue.record("\(msgs)"); return }
            #expect(!f.success && f.errorCode == 400 && !f.errorUser)
            #expect(f.errorStr == "models_call_json has timeout 1e16; it must be between 1 and 3600")
            #expect(H.text(try await H.engage(c, body: Array("again".utf8))) == "echo:again")
        }
    }

    @Test func aBusyNodeAnswersFinished503SoTheLBTriesAnotherRunner() async throws {
        try await H.withRunner(totalMemoryMB: 128, nonBlocking: true) { c, _, _ in
            // The first call holds all the memory until the test lets it go, however slow the
            // machine: no timing decides the outcome.
            async let holding = H.engage(c, body: Array("hold:busy".utf8))
            await TestSignals.event("busy.started").waitIgnoringCancellation()
            #expect(try await c.status2(.init()).active == 1)
            // Another function needs 128 MB too: nothing fits and nothing can be evicted.
            let model = H.model().replacingOccurrences(of: "\"fn_id\":\"f1\"", with: "\"fn_id\":\"f2\"")
            let busy = try await H.engage(c, model: model, body: Array("x".utf8))
            guard case .finished(let f)? = busy.last?.body else { Issue.record("\(busy)"); return }
            #expect(!f.success && f.errorCode == 503 && !f.errorUser && f.errorStr == "Timed out - server too busy", "\(f)")
            TestSignals.event("busy.go").fire()
            let held = try await holding
            #expect(H.text(held) == "held")
        }
    }

    @Test func aDetachedCallAnswers202AsItStartsAndItsOutputIsDropped() async throws {
        try await H.withRunner { c, _, _ in
            let msgs = try await H.engage(c, model: H.model(type: "detached"), body: Array("sleep:200".utf8))
            guard case .resultStart(let start)? = msgs.first?.body else { Issue.record("\(msgs)"); return }
            #expect(start.http.statusCode == 202)
            #expect(H.text(msgs).isEmpty)
            if case .finished(let f)? = msgs.last?.body { #expect(f.success) } else { Issue.record("no finished") }
        }
    }

    @Test func theLBsSlotHashKeysTheContainers() async throws {
        try await H.withRunner { c, agent, _ in
            _ = try await H.engage(c, body: Array("a".utf8), slot: "abc123")
            _ = try await H.engage(c, body: Array("b".utf8), slot: "abc123")
            #expect(agent.containers.count == 1, "the same slot hash shares one container")
        }
    }

    @Test func aCancelledStreamCancelsItsCall() async throws {
        try await H.withRunner { c, _, ended in
            let task = Task { try await H.engage(c, body: Array("sleep:30000".utf8)) }
            for _ in 0..<300 {
                if try await c.status2(.init()).active == 1 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            task.cancel()
            _ = try? await task.value
            for _ in 0..<500 where ended.records.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(ended.records.withLock { $0.first?.status } == .cancelled)
        }
    }

    @Test func aStreamThatDoesNotStartWithTryCallIsAProtocolFailure() async throws {
        try await H.withRunner { c, _, _ in
            await #expect {
                _ = try await c.engage { writer in
                    var frame = ClientMsg()
                    frame.data = DataFrame.with { $0.eof = true }
                    try await writer.write(frame)
                } onResponse: { response in
                    for try await _ in response.messages {}
                }
            } throws: { error in
                (error as? RPCError)?.message.contains("Protocol failure: expected ClientMsg_Try") == true
            }
        }
    }

    @Test func manyConcurrentEngagementsAllFinishAndStatusCountsThem() async throws {
        try await H.withRunner { c, _, _ in
            let before = try await c.status(.init())
            try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<20 { group.addTask { H.text(try await H.engage(c, body: Array("n\(i)".utf8))) } }
                var answers = Set<String>()
                for try await a in group { answers.insert(a) }
                #expect(answers == Set((0..<20).map { "echo:n\($0)" }))
            }
            let after = try await c.status2(.init())
            #expect(after.requestsReceived == before.requestsReceived + 20 && after.requestsHandled == before.requestsHandled + 20)
            #expect(after.active == 0)
        }
    }
}
