import HTTPTypes
import Hummingbird
import Runner
import RunnerOS
import RunnerStore

/// Running a sync call for a client: the answer streams as the function writes it, and a
/// client that goes away cancels the call.
extension FnAPI {
    /// Runs the call and answers with `shape`'s status and headers for the function's head.
    ///
    /// The call runs in a task of its own, since a streamed answer outlives this handler: the
    /// handler returns the head as soon as the function sent it, and the response body then
    /// drains the call's `ResponseStream` while the call goes on. A whole answer (the usual,
    /// small one) is returned as one body once the call ended.
    func respond(
        app: App, fn: Fn, _ request: FunctionRequest, _ context: FnRequestContext,
        shape: @escaping @Sendable (FunctionResponse) -> (HTTPResponse.Status, HTTPFields)
    ) async throws -> Response {
        let stream = ResponseStream()
        let call = try agent.makeCall(Self.definition(app: app, fn: fn), request, stream: stream)
        let agent = self.agent
        let running = Task { () -> Result<FunctionResponse, RunnerError> in
            let result: Result<FunctionResponse, RunnerError>
            do throws(RunnerError) {
                result = .success(try await agent.submit(call))
            } catch {
                result = .failure(error)
            }
            if case .failure(let e) = result { stream.end(e) } else { stream.end(nil) }
            return result
        }
        let watcher = ClientConnectionWatcher.watch(context.channel) {
            running.cancel()
            stream.cancel()
        }
        switch await stream.start() {
        case .whole:
            watcher?.stopWatching()
            switch await running.value {
            case .success(let r):
                var (status, headers) = shape(r)
                headers[Self.callIDHeader] = call.id
                return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: r.body)))
            case .failure(let e):
                return Self.errorResponse(e, callID: call.id)
            }
        case .streaming(let head):
            var (status, headers) = shape(head)
            headers[Self.callIDHeader] = call.id
            return Response(
                status: status, headers: headers,
                body: ResponseBody { writer in
                    defer { watcher?.stopWatching() }
                    do {
                        if !head.body.isEmpty { try await writer.write(ByteBuffer(bytes: head.body)) }
                        while let chunk = try await stream.next() { try await writer.write(ByteBuffer(bytes: chunk)) }
                    } catch {
                        // The client went away, or the call failed after its answer began: the
                        // call ends (and is recorded) before the connection is dropped, which
                        // tells the client its answer is incomplete.
                        running.cancel()
                        stream.cancel()
                        _ = await running.value
                        throw error
                    }
                    if case .failure(let e) = await running.value { throw e }
                    try await writer.finish(nil)
                })
        }
    }

    /// Fn's error answer with the call's id; a client that went away gets Fn's 444, no body.
    static func errorResponse(_ error: RunnerError, callID: String?) -> Response {
        var response: Response
        if error.code == .callCancelled {
            response = Response(status: .init(code: 444))
        } else {
            response = error.httpResponse()
        }
        if let callID { response.headers[callIDHeader] = callID }
        return response
    }
}
