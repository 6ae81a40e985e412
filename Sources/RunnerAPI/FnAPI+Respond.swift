import HTTPTypes
import Hummingbird
import Runner
import RunnerOS
import RunnerStore

/// Running a sync call for a client: its events (`CallExecution`) as an HTTP answer that streams
/// as the function writes it; a client that goes away cancels the call.
extension FnAPI {
    /// Runs the call and answers with `shape`'s status and headers for the function's head.
    ///
    /// The handler returns the head as soon as the function sent it; the response body then
    /// passes the call's body events on while the call goes on. A whole answer (the usual,
    /// small one) is returned as one body once the call ended.
    func respond(
        _ definition: DefinitionCache.Definition, _ request: FunctionRequest, _ context: FnRequestContext,
        shape: @escaping AnswerShape
    ) async throws -> Response {
        let execution = try startCall(definition, request)
        let call = execution.call
        let watcher = ClientConnectionWatcher.watch(context.channel) { execution.cancel() }
        switch await execution.next() {
        case .head(let head, complete: false)?:
            var (status, headers) = shape(head)
            headers[Self.callIDHeader] = call.id
            return Response(
                status: status, headers: headers,
                body: ResponseBody { writer in
                    defer { watcher?.stopWatching() }
                    var failure: RunnerError?
                    do {
                        if !head.body.isEmpty { try await writer.write(ByteBuffer(bytes: head.body)) }
                        events: while let event = await execution.next() {
                            switch event {
                            case .body(let chunk): try await writer.write(ByteBuffer(bytes: chunk))
                            case .end(let error):
                                failure = error
                                break events
                            case .head: continue
                            }
                        }
                    } catch {
                        // The client went away: the call ends (and is recorded) before the
                        // connection is dropped.
                        await execution.cancelAndWait()
                        throw error
                    }
                    // The call failed after its answer began: dropping the connection tells the
                    // client its answer is incomplete.
                    if let failure { throw failure }
                    try await writer.finish(nil)
                })
        case .head(let whole, complete: true)?:
            watcher?.stopWatching()
            var (status, headers) = shape(whole)
            headers[Self.callIDHeader] = call.id
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: whole.body)))
        case .end(let error)?:
            watcher?.stopWatching()
            return Self.errorResponse(error ?? CallErrors.cancelled("call function"), callID: call.id)
        case .body?, nil:
            watcher?.stopWatching()
            return Self.errorResponse(CallErrors.cancelled("call function"), callID: call.id)
        }
    }

    /// Starts a sync call whose answer streams as the function writes it. `executor`: where the
    /// call's task runs (the edge's event loop, or nil for the cooperative pool).
    func startCall(
        _ d: DefinitionCache.Definition, _ request: FunctionRequest, on executor: (any TaskExecutor)? = nil
    ) throws(RunnerError) -> CallExecution {
        let call = try agent.makeCall(d.function, request, stream: ResponseStream(), slotKey: d.slotKey)
        return agent.execute(call, on: executor)
    }

    /// A sync call whose events go to `sink` as they happen, for an edge that runs it in its own
    /// task (`Agent.run(_:deliveringTo:)`).
    func makeCall(_ d: DefinitionCache.Definition, _ request: FunctionRequest, deliveringTo sink: any CallEventSink) throws(RunnerError) -> Call {
        try agent.makeCall(d.function, request, stream: ResponseStream(delivering: sink), slotKey: d.slotKey)
    }

    /// Fn's error answer with the call's id; a client that went away gets Fn's 444, no body.
    static func errorResponse(_ error: RunnerError, callID: String?) -> Response {
        let (status, headers, body) = errorAnswer(error, callID: callID)
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    static func errorAnswer(_ error: RunnerError, callID: String?) -> (HTTPResponse.Status, HTTPFields, ByteBuffer) {
        var answer = error.code == .callCancelled ? (HTTPResponse.Status(code: 444), HTTPFields(), ByteBuffer()) : error.httpAnswer()
        if let callID { answer.1[callIDHeader] = callID }
        return answer
    }
}
