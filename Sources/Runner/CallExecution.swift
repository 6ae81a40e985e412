import RunnerOS
import Synchronization

/// What a running call tells its edge, in order: the function's head, body chunks, the end.
public enum CallEvent: Sendable {
    /// The function's status and headers. `complete`: the answer arrived whole, `head.body` is
    /// all of it and `.end(nil)` follows. Otherwise `head.body` is what came with the head and
    /// `.body` chunks follow as the function writes them.
    case head(FunctionResponse, complete: Bool)
    case body([UInt8])
    /// The call ended, and is recorded: nil when it succeeded. An error after `.head` means the
    /// answer was cut off; an error with no `.head` before it means the function never answered.
    case end(RunnerError?)
}

/// One call on its way, as both edges (`POST /invoke` and triggers over HTTP, Engage over gRPC)
/// see it. An edge only translates these events into its protocol; how the answer streams,
/// how the call's task is run and how its end is awaited live here once.
///
/// Cancellation goes one way: the edge calls `cancel()` (its client went away, the LB gave up,
/// its write failed), the call ends as cancelled, and the events still finish with `.end`.
/// Events are for one consumer at a time.
public final class CallExecution: Sendable {
    public let call: Call
    private let running: Task<Result<FunctionResponse, RunnerError>, Never>

    private enum Phase: Sendable {
        case start, streaming
        /// A whole answer's head went out; its end is next.
        case ending
        case finished
    }
    private let phase = Mutex(Phase.start)

    init(agent: Agent, call: Call, executor: (any TaskExecutor)?) {
        self.call = call
        // The call runs in a task of its own: a streamed answer is consumed while the call goes
        // on, and outlives the edge's handler that started it. The task begins on this thread,
        // up to its first wait (usually for the function's answer): not handed to another
        // thread of the pool first, which on a warm call would cost a thread wake-up.
        running = Task.immediate(executorPreference: executor) {
            let result: Result<FunctionResponse, RunnerError>
            do throws(RunnerError) {
                result = .success(try await agent.submit(call))
            } catch {
                result = .failure(error)
            }
            call.responseStream?.end(result.failure)
            return result
        }
    }

    /// Ends the call as cancelled, unless it already ended; `next()` still ends with `.end`.
    public func cancel() {
        running.cancel()
        call.responseStream?.cancel()
    }

    /// The next event; nil after `.end`.
    public func next() async -> CallEvent? {
        switch phase.withLock({ $0 }) {
        case .finished:
            return nil
        case .ending:
            phase.withLock { $0 = .finished }
            return .end(nil)
        case .start:
            if let stream = call.responseStream, case .streaming(let head) = await stream.start() {
                phase.withLock { $0 = .streaming }
                return .head(head, complete: false)
            }
            switch await running.value {
            case .success(let r):
                phase.withLock { $0 = .ending }
                return .head(r, complete: true)
            case .failure(let e):
                phase.withLock { $0 = .finished }
                return .end(e)
            }
        case .streaming:
            do throws(RunnerError) {
                if let chunk = try await call.responseStream?.next() { return .body(chunk) }
            } catch {
                // The call's own error (its end says it), or this task was cancelled: then the
                // call is cancelled too, and its end is still awaited below.
                cancel()
            }
            phase.withLock { $0 = .finished }
            return .end(await running.value.failure)
        }
    }

    /// Cancels the call and waits until it ended and was recorded.
    public func cancelAndWait() async {
        cancel()
        while await next() != nil {}
    }
}

extension Agent {
    /// Runs `call` in this task and hands its events to `sink` as they happen, in
    /// `CallExecution`'s order, the last one `.end` once the call is recorded. `call` is made
    /// with `ResponseStream(delivering: sink)` for its answer to stream, or with no stream.
    ///
    /// Cancel the task to cancel the call, and the call's stream when its client went away.
    public func run(_ call: Call, deliveringTo sink: any CallEventSink) async {
        let result: Result<FunctionResponse, RunnerError>
        do throws(RunnerError) {
            result = .success(try await submit(call))
        } catch {
            result = .failure(error)
        }
        if case .success(let whole) = result, call.responseStream?.hasDelivered != true {
            try? await sink.deliver(.head(whole, complete: true), deadlineNanos: .max)
        }
        try? await sink.deliver(.end(result.failure), deadlineNanos: .max)
    }

    /// Runs `call` and returns its events. The call is made with `makeCall`; with a
    /// `ResponseStream` its answer streams as the function writes it.
    ///
    /// `executor`: where the call's task runs between its waits (a task of its own inherits no
    /// preference). An edge whose handler runs on an event loop passes that loop, so the
    /// function's answer wakes the loop alone, not a thread of the cooperative pool that then
    /// wakes the loop. Nil: the global executor.
    public func execute(_ call: Call, on executor: (any TaskExecutor)? = nil) -> CallExecution {
        CallExecution(agent: self, call: call, executor: executor)
    }
}
