import Foundation
import LoopExecutors
import Runner
import RunnerOS
import ServiceContextModule
import SwiftProtobuf
import Synchronization

/// fnrunner as one of Fn's "pure runners": Fn's load balancer (fnserver, FN_NODE_TYPE=lb)
/// places each call here over an Engage stream, and this node runs it on its agent.
///
/// Engage: the first message must be a TryCall (Fn's call model as JSON); the request body
/// follows in DataFrames until eof; the answer goes back as `result_start` (status and
/// headers), `data` frames of at most 10 KiB, and `finished`. A node too busy to take the call
/// answers `finished` with 503, which tells the LB to try another runner. Detached calls answer
/// 202 as they start; their output is dropped. A cancelled stream cancels the call.
///
/// The body is read whole before the call starts, so a function can never answer before its
/// input ended (Fn's "premature write" cannot happen here). `RunnerStream` reads and
/// writes the streams; this is what their messages mean.
public final class PureRunner: Sendable {
    let agent: Agent
    /// FN_MAX_REQUEST_SIZE: the largest request body accepted.
    let maxRequestBytes: Int
    let received = Atomic<UInt64>(0)
    let handled = Atomic<UInt64>(0)

    /// Fn's limit on one data frame.
    static let frameBytes = 10 << 10
    /// Whole answers up to this size go to the LB in one write with their head and end.
    static let batchedBytes = 64 << 10

    public init(agent: Agent, maxRequestBytes: Int = 6 << 20) {
        self.agent = agent
        self.maxRequestBytes = maxRequestBytes
    }

    /// Makes the call of an Engage whose body has arrived and starts its task, which answers
    /// through `reply`. Throws what refuses the call before it starts (`finished` says it).
    ///
    /// A cold call starts and removes its container in its task (image lookups under a file
    /// lock, the start, the cgroup's removal), work that may block, which an event loop must
    /// not: that task runs off the loops. A hot call's task runs on its stream's loop
    /// (`executor`), so the function's answer wakes that loop and no other thread.
    func start(
        _ model: FnCallModel, slotHash: String, body: [UInt8], traceParent: ServiceContext?, reply: StreamReply,
        executor: EventLoopTaskExecutor
    ) throws(RunnerError) {
        let request = FunctionRequest(
            callID: model.id, method: model.method, url: model.url, contentType: model.contentType, headers: model.headers, body: body)
        let slotKey = slotHash.isEmpty ? nil : SlotKey(lbSlotHash: slotHash, idleTimeoutSeconds: model.function.idleTimeoutSeconds)
        let stream = model.isDetached ? nil : ResponseStream()
        let agent = self.agent
        // A detached call's LB answers its client as soon as the call starts.
        var onStart: (@Sendable () async -> Void)?
        if model.isDetached {
            onStart = { @Sendable () async -> Void in _ = await reply.send([Self.head(status: 202, headers: [])]) }
        }
        // With a trace parent (the LB's `traceparent`), the call's span joins the LB's trace.
        let made = ServiceContext.$current.withValue(traceParent ?? ServiceContext.current) { () -> Result<Call, RunnerError> in
            do throws(RunnerError) {
                return .success(try agent.makeCall(model.function, request, type: model.type, stream: stream, slotKey: slotKey, onStart: onStart))
            } catch {
                return .failure(error)
            }
        }
        let call = try made.get()
        if model.function.format == FunctionFormat.cold.rawValue {
            Task(executorPreference: globalConcurrentExecutor) {
                await Self.within(traceParent) { await Self.answer(model, agent.execute(call), call, reply) }
            }
        } else {
            // Runs here up to its first wait, then on this loop.
            Task.immediate(executorPreference: executor) {
                await Self.within(traceParent) { await Self.answer(model, agent.execute(call, on: executor), call, reply) }
            }
        }
    }

    private static func within(_ parent: ServiceContext?, _ body: () async -> Void) async {
        guard let parent else { return await body() }
        await ServiceContext.$current.withValue(parent) { await body() }
    }

    /// Passes the call's events on to the LB as Engage's messages; a broken stream or the LB's
    /// cancellation cancels the call.
    static func answer(_ model: FnCallModel, _ execution: CallExecution, _ call: Call, _ reply: StreamReply) async {
        reply.began(execution)
        while let event = await execution.next() {
            switch event {
            case .head(let head, let complete):
                // A detached call's 202 went out as it started; its output is dropped.
                if model.isDetached { continue }
                let start = Self.head(status: head.status, headers: head.headers)
                // A small whole answer: its end is already known, and the LB gets head, body
                // and end in one write. A large one goes frame by frame, each waited for.
                if complete && head.body.count <= Self.batchedBytes, case .end(let error)? = await execution.next() {
                    var whole = [start]
                    Self.appendFrames(head.body[...], to: &whole)
                    whole.append(Self.finished(error: error, call: call))
                    reply.write(whole, end: true)
                } else {
                    var sent = await reply.send([start])
                    if sent { sent = await Self.send(head.body[...], to: reply) }
                    if !sent { return await execution.cancelAndWait() }
                }
            case .body(let chunk):
                if !model.isDetached, await !Self.send(chunk[...], to: reply) { return await execution.cancelAndWait() }
            case .end(let error):
                reply.write([Self.finished(error: error, call: call)], end: true)
            }
        }
    }

    /// Body bytes in frames of at most 10 KiB, each waited for; false: the stream broke (the
    /// call then ends as cancelled, and is recorded).
    static func send(_ bytes: ArraySlice<UInt8>, to reply: StreamReply) async -> Bool {
        for msg in frames(bytes) where await !reply.send([msg]) { return false }
        return true
    }

    static func head(status: Int, headers: [HTTPHeader]) -> EngageAnswer {
        .start(status: status, headers: headers.filter { !HopByHop.names.contains($0.name) })
    }

    /// Never an eof frame: `finished` ends the answer.
    static func frames(_ bytes: ArraySlice<UInt8>) -> [EngageAnswer] {
        var out: [EngageAnswer] = []
        appendFrames(bytes, to: &out)
        return out
    }

    static func appendFrames(_ bytes: ArraySlice<UInt8>, to out: inout [EngageAnswer]) {
        var rest = bytes
        while !rest.isEmpty {
            let piece = rest.prefix(frameBytes)
            rest = rest.dropFirst(piece.count)
            out.append(.data(piece))
        }
    }

    /// The call's end as Fn's LB reads it: success, the call id, the error as Fn's status and
    /// message, whether the function caused it, and the call's times.
    static func finished(error: RunnerError?, call: Call?) -> EngageAnswer {
        var f = EngageAnswer.Finished()
        f.success = error == nil
        if let error {
            f.errorCode = Int32(error.callStatus ?? 500)
            f.errorStr = error.message
            f.errorUser = error.isFunctionError
        }
        if let call {
            let r = call.record
            f.details = r.id
            f.image = r.image
            f.createdAt = r.createdAt
            f.startedAt = r.startedAt ?? ""
            f.completedAt = r.completedAt ?? WallClock.rfc3339(WallClock.nowNanos(), millis: true)
            f.executionDuration = Int64(clamping: r.executionDurationNanos ?? 0)
        }
        return .finished(f)
    }

    // MARK: status and the rest of RunnerProtocol

    /// What Fn's Status and Status2 report: calls in flight and engagements received and
    /// handled. (No status image is run: none is configured.)
    func currentStatus() -> RunnerStatus {
        var s = RunnerStatus()
        s.active = Int32(clamping: agent.runningCount)
        s.requestsReceived = received.load(ordering: .relaxed)
        s.requestsHandled = handled.load(ordering: .relaxed)
        let now = WallClock.rfc3339(WallClock.nowNanos(), millis: true)
        s.createdAt = now
        s.startedAt = now
        s.completedAt = now
        return s
    }
}
