import NIOCore
import Runner
import RunnerOS

/// The events of a call `InvokeChannelHandler` answers, written on the connection's loop as
/// they happen: the call runs in the answer's own task (`Agent.run(_:deliveringTo:)`), with no
/// second task and no buffer between the function and the client.
struct LoopAnswerSink: CallEventSink {
    let handler: NIOLoopBound<InvokeChannelHandler>
    let context: NIOLoopBound<ChannelHandlerContext>
    let loop: any EventLoop
    let shape: FnAPI.AnswerShape
    let callID: String

    func deliver(_ event: CallEvent, deadlineNanos: UInt64) async throws(RunnerError) {
        let written: EventLoopFuture<Void>
        if loop.inEventLoop {
            guard let write = handler.value.deliver(event, shape, callID: callID, context.value) else { return }
            written = write
        } else {
            // A cold call runs on the cooperative pool. What has no deadline (the head, the
            // whole answer, the end) is handed over in order without a wait: each wait is a
            // round trip between two threads.
            let (handler, context, shape, callID, loop) = (handler, context, shape, callID, loop)
            if deadlineNanos == .max {
                loop.execute { _ = handler.value.deliver(event, shape, callID: callID, context.value) }
                return
            }
            written = loop.flatSubmit {
                handler.value.deliver(event, shape, callID: callID, context.value) ?? loop.makeSucceededVoidFuture()
            }
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
}
