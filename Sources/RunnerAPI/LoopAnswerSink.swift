import HTTPTypes
import NIOCore
import Runner
import RunnerOS

/// The events of a call `InvokeChannelHandler` answers, written on the connection's loop as
/// they happen, as the router writes them (`FnAPI.respond`): the call runs in the answer's own
/// task (`Agent.run(_:deliveringTo:)`), with no second task and no buffer between the function
/// and the client.
struct LoopAnswerSink: CallEventSink {
    let handler: NIOLoopBound<InvokeChannelHandler>
    let context: NIOLoopBound<ChannelHandlerContext>
    let loop: any EventLoop
    let shape: FnAPI.AnswerShape
    let callID: String
    /// The head went out: the answer streams.
    private let streaming: NIOLoopBoundBox<Bool>

    /// Made on the loop.
    init(
        handler: NIOLoopBound<InvokeChannelHandler>, context: NIOLoopBound<ChannelHandlerContext>, loop: any EventLoop,
        shape: @escaping FnAPI.AnswerShape, callID: String
    ) {
        (self.handler, self.context, self.loop, self.shape, self.callID) = (handler, context, loop, shape, callID)
        streaming = NIOLoopBoundBox(false, eventLoop: loop)
    }

    func deliver(_ event: CallEvent, deadlineNanos: UInt64) async throws(RunnerError) {
        let written: EventLoopFuture<Void>
        if loop.inEventLoop {
            guard let write = write(event) else { return }
            written = write
        } else {
            // A cold call runs on the cooperative pool. What has no deadline (the head, the
            // whole answer, the end) is handed over in order without a wait: each wait is a
            // round trip between two threads.
            if deadlineNanos == .max {
                loop.execute { _ = self.write(event) }
                return
            }
            written = loop.flatSubmit { self.write(event) ?? self.loop.makeSucceededVoidFuture() }
        }
        // A part the client has not taken by the deadline, or when the call is cancelled, cuts
        // the answer off: the connection closes, which fails the write.
        let context = self.context
        let now = MonotonicClock.nowNanos()
        let timer =
            deadlineNanos == .max
            ? nil
            : loop.scheduleTask(in: .nanoseconds(Int64(clamping: deadlineNanos > now ? deadlineNanos - now : 0))) {
                context.value.close(promise: nil)
            }
        defer { timer?.cancel() }
        do {
            try await withTaskCancellationHandler {
                try await written.get()
            } onCancel: { [loop] in
                loop.execute { context.value.close(promise: nil) }
            }
        } catch {
            if MonotonicClock.nowNanos() >= deadlineNanos {
                throw RunnerError(.timeout, "the client did not take the answer in time", step: "stream response")
            }
            throw CallErrors.cancelled("stream response")
        }
    }

    /// Writes `event`, on the loop; returns the write a streamed part waits for, if any.
    private func write(_ event: CallEvent) -> EventLoopFuture<Void>? {
        let (handler, context) = (self.handler.value, self.context.value)
        guard handler.isAnswering else { return nil }
        switch event {
        case .head(let head, complete: false):
            // A client gone: nothing streams, and the call ends cancelled.
            if handler.clientGone { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            streaming.value = true
            var (status, headers) = shape(head)
            headers[FnAPI.callIDHeader] = callID
            headers[.date] = HTTPDate.now()
            // Flushed at once, as the router does: a client waiting for the head (an LB's
            // header timeout, an event stream) gets it before the first chunk.
            context.writeAndFlush(handler.wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: headers))), promise: nil)
            if head.body.isEmpty { return nil }
            return context.writeAndFlush(handler.wrapOutboundOut(.body(ByteBuffer(bytes: head.body))))
        case .body(let chunk):
            if handler.clientGone { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            // One chunk at a time: a slow client slows the function, not the memory.
            return context.writeAndFlush(handler.wrapOutboundOut(.body(ByteBuffer(bytes: chunk))))
        case .head(let whole, complete: true):
            var (status, headers) = shape(whole)
            headers[FnAPI.callIDHeader] = callID
            handler.writeWhole((status, headers, ByteBuffer(bytes: whole.body)), context)
        case .end(nil):
            // A whole answer ended with its head.
            if streaming.value { handler.writeEnd(context) }
        case .end(let error?):
            if streaming.value {
                // The call failed after its answer began: a dropped connection tells the
                // client its answer is incomplete.
                context.close(promise: nil)
            } else {
                handler.writeWhole(FnAPI.errorAnswer(error, callID: callID), context)
            }
        }
        return nil
    }
}
