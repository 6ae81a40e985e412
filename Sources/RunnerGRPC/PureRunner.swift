import Foundation
import GRPCCore
import LoopExecutors
import Runner
import RunnerOS
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
/// input ended (Fn's "premature write" cannot happen here).
public final class PureRunner: RunnerProtocol.SimpleServiceProtocol {
    let agent: Agent
    /// FN_MAX_REQUEST_SIZE: the largest request body accepted.
    let maxRequestBytes: Int
    private let received = Atomic<UInt64>(0)
    private let handled = Atomic<UInt64>(0)

    /// Fn's limit on one data frame.
    static let frameBytes = 10 << 10
    /// Whole answers up to this size go to the LB in one write with their head and end.
    static let batchedBytes = 64 << 10

    public init(agent: Agent, maxRequestBytes: Int = 6 << 20) {
        self.agent = agent
        self.maxRequestBytes = maxRequestBytes
    }

    public func engage(
        request: RPCAsyncSequence<ClientMsg, any Error>, response: RPCWriter<RunnerMsg>, context: ServerContext
    ) async throws {
        received.add(1, ordering: .relaxed)
        var messages = request.makeAsyncIterator()
        guard let first = try await messages.next() else {
            throw RPCError(code: .unavailable, message: "the stream ended before its TryCall")
        }
        guard case .try(let tryCall)? = first.body else {
            throw RPCError(code: .invalidArgument, message: "Protocol failure: expected ClientMsg_Try")
        }
        handled.add(1, ordering: .relaxed)
        let model: FnCallModel
        let body: [UInt8]
        do {
            model = try FnCallModel.parse(tryCall.modelsCallJson)
            body = try await Self.readBody(&messages, limit: maxRequestBytes)
        } catch let e as RunnerError {
            try await response.write(Self.finished(error: e, call: nil))
            return
        }
        let request = FunctionRequest(
            callID: model.id, method: model.method, url: model.url, contentType: model.contentType, headers: model.headers, body: body)
        let slotKey = tryCall.slotHashID.isEmpty ? nil : SlotKey(lbSlotHash: tryCall.slotHashID, idleTimeoutSeconds: model.function.idleTimeoutSeconds)
        let stream = model.isDetached ? nil : ResponseStream()
        // A detached call's LB answers its client as soon as the call starts.
        var onStart: (@Sendable () async -> Void)?
        if model.isDetached {
            onStart = { @Sendable () async -> Void in _ = try? await response.write(Self.head(status: 202, headers: [])) }
        }
        let call: Call
        do {
            call = try agent.makeCall(model.function, request, type: model.type, stream: stream, slotKey: slotKey, onStart: onStart)
        } catch {
            try await response.write(Self.finished(error: error, call: nil))
            return
        }
        // A cold call starts and removes its container in its own task (image lookups under a
        // file lock, the start, the cgroup's removal), work that may block, which an event loop
        // must not: its handler leaves the loop for the call's length. A hot call stays on it.
        if model.function.format == FunctionFormat.cold.rawValue {
            try await withTaskExecutorPreference(globalConcurrentExecutor) {
                try await Self.answer(model, agent.execute(call), call, response)
            }
        } else {
            try await Self.answer(model, agent.execute(call, on: LoopAffineTaskExecutor.current?.pinnedHere), call, response)
        }
    }

    /// Passes the call's events on to the LB as Engage's messages; a broken stream or the LB's
    /// cancellation cancels the call.
    static func answer(_ model: FnCallModel, _ execution: CallExecution, _ call: Call, _ response: RPCWriter<RunnerMsg>) async throws {
        try await withRPCCancellationHandler {
            do {
                while let event = await execution.next() {
                    switch event {
                    case .head(let head, let complete):
                        // A detached call's 202 went out as it started; its output is dropped.
                        if model.isDetached { continue }
                        let start = Self.head(status: head.status, headers: head.headers)
                        // A small whole answer: its end is already known, and the LB gets head,
                        // body and end in one write (one hand-over to the connection's event
                        // loop). A large one goes frame by frame, not copied whole once more.
                        if complete && head.body.count <= Self.batchedBytes, case .end(let error)? = await execution.next() {
                            try await response.write(contentsOf: [start] + Self.frames(head.body[...]) + [Self.finished(error: error, call: call)])
                        } else {
                            try await response.write(start)
                            try await Self.write(head.body[...], to: response)
                        }
                    case .body(let chunk):
                        if !model.isDetached { try await Self.write(chunk[...], to: response) }
                    case .end(let error):
                        try await response.write(Self.finished(error: error, call: call))
                    }
                }
            } catch {
                // The stream broke under a write: the call ends as cancelled, and is recorded.
                await execution.cancelAndWait()
                throw error
            }
        } onCancelRPC: {
            // The LB went away or gave up.
            execution.cancel()
        }
    }

    /// The request body: DataFrames until one says eof (or the stream ends).
    static func readBody(_ messages: inout RPCAsyncSequence<ClientMsg, any Error>.AsyncIterator, limit: Int) async throws -> [UInt8] {
        var body: [UInt8] = []
        while let message = try await messages.next() {
            guard case .data(let frame)? = message.body else {
                throw RunnerError(.invalidArgument, "Protocol failure: expected ClientMsg_Data after the TryCall", step: "read body")
            }
            body.append(contentsOf: frame.data)
            if body.count > limit { throw CallErrors.requestTooLarge("read body") }
            if frame.eof { break }
        }
        return body
    }

    static func head(status: Int, headers: [HTTPHeader]) -> RunnerMsg {
        var meta = HttpRespMeta()
        meta.statusCode = Int32(clamping: status)
        meta.headers = headers.filter { !HopByHop.names.contains($0.name) }.map { h in HttpHeader.with { $0.key = h.name; $0.value = h.value } }
        var msg = RunnerMsg()
        msg.resultStart = CallResultStart.with { $0.http = meta }
        return msg
    }

    /// Body bytes in frames of at most 10 KiB; never an eof frame (`finished` ends the answer).
    static func write(_ bytes: ArraySlice<UInt8>, to response: RPCWriter<RunnerMsg>) async throws {
        for msg in frames(bytes) { try await response.write(msg) }
    }

    static func frames(_ bytes: ArraySlice<UInt8>) -> [RunnerMsg] {
        var rest = bytes
        var out: [RunnerMsg] = []
        while !rest.isEmpty {
            let piece = rest.prefix(frameBytes)
            rest = rest.dropFirst(piece.count)
            var msg = RunnerMsg()
            msg.data = DataFrame.with { $0.data = Data(piece) }
            out.append(msg)
        }
        return out
    }

    /// The call's end as Fn's LB reads it: success, the call id, the error as Fn's status and
    /// message, whether the function caused it, and the call's times.
    static func finished(error: RunnerError?, call: Call?) -> RunnerMsg {
        var f = CallFinished()
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
        var msg = RunnerMsg()
        msg.finished = f
        return msg
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

    public func status(request: Google_Protobuf_Empty, context: ServerContext) async throws -> RunnerStatus { currentStatus() }

    public func status2(request: Google_Protobuf_Struct, context: ServerContext) async throws -> RunnerStatus { currentStatus() }

    /// Accepted and ignored: Fn hands the map to an extension hook that fnrunner does not have.
    public func configureRunner(request: ConfigMsg, context: ServerContext) async throws -> ConfigStatus { ConfigStatus() }

    /// A protocol-valid stream with no logs: calls' logs are in the node's own call records.
    /// It stays open until the LB ends it, as Fn's does.
    public func streamLogs(
        request: RPCAsyncSequence<LogRequestMsg, any Error>, response: RPCWriter<LogResponseMsg>, context: ServerContext
    ) async throws {
        for try await _ in request {}
    }
}
