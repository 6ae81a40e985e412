import LoopExecutors
import NIOCore
import NIOHPACK
import NIOHTTP2
import Runner
import RunnerOS
import ServiceContextModule
import SwiftProtobuf
import Tracing

/// One RPC of Fn's RunnerProtocol on its HTTP/2 stream, read and answered on the connection's
/// event loop. `RunnerConnectionHandler` hands it its stream's frames and tells it when the
/// stream closed.
///
/// grpc-swift's server gave every stream an async channel and ran each handler as a task
/// reading messages from an async sequence: about 190 µs of serve's CPU per Engage before the
/// agent was asked anything, as much as a whole `POST /invoke`. Here a stream's messages are
/// taken as their frames arrive, with no task until the call starts; the call's task then runs
/// on this loop (a hot call) and writes its answer here.
final class RunnerStream {
    enum Method: String {
        case engage = "/RunnerProtocol/Engage"
        case status = "/RunnerProtocol/Status"
        case status2 = "/RunnerProtocol/Status2"
        case configureRunner = "/RunnerProtocol/ConfigureRunner"
        case streamLogs = "/RunnerProtocol/StreamLogs"
    }

    private enum Phase {
        case awaitingHead
        /// The request's messages arrive.
        case reading(Method)
        /// An Engage's TryCall was taken: its body arrives.
        case readingBody(FnCallModel, slotHash: String, body: [UInt8])
        /// The call runs; anything more the client sends is not read.
        case running
        /// The trailers went out, or the stream closed.
        case ended
    }
    private var phase = Phase.awaitingHead
    private var reader = GRPCWire.MessageReader()
    private var headersSent = false
    private var inputEnded = false
    private var traceParent: ServiceContext?
    private var deadline: Scheduled<Void>?
    /// The running call, cancelled when the stream closes first.
    private var execution: CallExecution?
    /// The connection's context while the stream is open; nil once it closed.
    private var context: ChannelHandlerContext?

    private let id: HTTP2StreamID
    private let runner: PureRunner
    /// Where hot calls' tasks run: the connection's loop.
    private let executor: EventLoopTaskExecutor
    private let tracing: Bool

    init(_ id: HTTP2StreamID, context: ChannelHandlerContext, runner: PureRunner, executor: EventLoopTaskExecutor, tracing: Bool) {
        self.id = id
        self.context = context
        self.runner = runner
        self.executor = executor
        self.tracing = tracing
    }

    /// Whether the client may still send on it: its flow-control window is kept open.
    var isReceiving: Bool { !inputEnded && context != nil }

    /// The stream closed (both sides ended, a reset either way, a stream error, or the
    /// connection went): a running call is cancelled, and nothing more is written.
    func closed() {
        endAndCancelCall()
        context = nil
    }

    /// The RPC is over before its call's answer (the LB reset the stream or gave up, the
    /// connection broke, or the RPC failed): a running call is cancelled.
    private func endAndCancelCall() {
        ended()
        execution?.cancel()
        execution = nil
    }

    /// One of the stream's frames, as the connection read it.
    func receive(_ payload: HTTP2Frame.FramePayload) {
        guard let context else { return }
        switch payload {
        case .headers(let headers):
            if case .awaitingHead = phase {
                begin(headers.headers, context)
            }
            if headers.endStream { inputEnd() }
        case .data(let frame):
            if case .byteBuffer(let bytes) = frame.data {
                reader.append(bytes)
                readMessages()
            }
            if frame.endStream { inputEnd() }
        default:
            break
        }
    }

    // MARK: the request

    private func begin(_ headers: HPACKHeaders, _ context: ChannelHandlerContext) {
        guard headers.first(name: ":method") == "POST" else { return answerHTTP(status: "405") }
        guard headers.first(name: "content-type")?.hasPrefix("application/grpc") == true else { return answerHTTP(status: "415") }
        let path = headers.first(name: ":path") ?? ""
        guard let method = Method(rawValue: path) else {
            return fail(GRPCWire.Failure(.unimplemented, "Method not found: \(path)"))
        }
        if let encoding = headers.first(name: "grpc-encoding"), encoding != "identity" {
            return fail(GRPCWire.Failure(.unimplemented, "grpc-encoding \(encoding) is not supported: only identity"))
        }
        do throws(GRPCWire.Failure) {
            if let nanos = try GRPCWire.timeoutNanos(headers.first(name: "grpc-timeout")) {
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                deadline = context.eventLoop.scheduleTask(in: .nanoseconds(nanos)) {
                    handler.value.fail(GRPCWire.Failure(.deadlineExceeded, "the RPC's deadline (grpc-timeout) passed"))
                }
            }
        } catch {
            return fail(error)
        }
        if tracing {
            var parent = ServiceContext.topLevel
            InstrumentationSystem.instrument.extract(headers, into: &parent, using: HPACKExtractor())
            traceParent = parent
        }
        if method == .engage { runner.received.add(1, ordering: .relaxed) }
        phase = .reading(method)
    }

    private func readMessages() {
        while true {
            let message: ByteBuffer
            do throws(GRPCWire.Failure) {
                guard let next = try reader.next() else { return }
                message = next
            } catch {
                return fail(error)
            }
            do throws(GRPCWire.Failure) {
                switch phase {
                case .reading(.engage):
                    try takeTryCall(EngageRequest.decode(message))
                case .readingBody(let model, let slotHash, var body):
                    phase = .running  // the array is not shared while it grows
                    guard case .data(let data, let eof) = try EngageRequest.decode(message) else {
                        return finish(RunnerError(.invalidArgument, "Protocol failure: expected ClientMsg_Data after the TryCall", step: "read body"))
                    }
                    body.append(contentsOf: data.readableBytesView)
                    if body.count > runner.maxRequestBytes { return finish(CallErrors.requestTooLarge("read body")) }
                    if eof { return start(model, slotHash: slotHash, body: body) }
                    phase = .readingBody(model, slotHash: slotHash, body: body)
                case .reading(.status):
                    _ = try GRPCWire.decode(Google_Protobuf_Empty.self, message)
                    answerUnary(runner.currentStatus())
                case .reading(.status2):
                    _ = try GRPCWire.decode(Google_Protobuf_Struct.self, message)
                    answerUnary(runner.currentStatus())
                case .reading(.configureRunner):
                    // Accepted and ignored: Fn hands the map to an extension hook that fnrunner
                    // does not have.
                    _ = try GRPCWire.decode(ConfigMsg.self, message)
                    answerUnary(ConfigStatus())
                case .reading(.streamLogs):
                    // A protocol-valid stream with no logs: calls' logs are in the node's own
                    // call records. It stays open until the LB ends it, as Fn's does.
                    _ = try GRPCWire.decode(LogRequestMsg.self, message)
                case .awaitingHead, .running, .ended:
                    return
                }
            } catch {
                return fail(error)
            }
        }
    }

    private func takeTryCall(_ first: EngageRequest) {
        guard case .tryCall(let json, let slotHash) = first else {
            return fail(GRPCWire.Failure(.invalidArgument, "Protocol failure: expected ClientMsg_Try"))
        }
        runner.handled.add(1, ordering: .relaxed)
        do throws(RunnerError) {
            let model = try FnCallModel.parse(json)
            phase = .readingBody(model, slotHash: slotHash, body: [])
        } catch {
            finish(error)
        }
    }

    /// The client ended its side.
    private func inputEnd() {
        if inputEnded { return }
        inputEnded = true
        switch phase {
        case .reading, .readingBody:
            if reader.hasPartialMessage { return fail(GRPCWire.Failure(.internal, "the stream ended inside a message")) }
        case .awaitingHead, .running, .ended:
            break
        }
        switch phase {
        case .reading(.engage):
            fail(GRPCWire.Failure(.unavailable, "the stream ended before its TryCall"))
        case .readingBody(let model, let slotHash, let body):
            // Fn's LB ends a body with an eof frame; a stream that ends without one ends it too.
            start(model, slotHash: slotHash, body: body)
        case .reading(.streamLogs):
            _ = send([LogResponseMsg](), end: true)
        case .reading:
            fail(GRPCWire.Failure(.internal, "the request ended before its message"))
        case .awaitingHead, .running, .ended:
            break
        }
    }

    // MARK: the call

    private func start(_ model: FnCallModel, slotHash: String, body: [UInt8]) {
        guard let context else { return }
        phase = .running
        let reply = StreamReply(NIOLoopBound(self, eventLoop: context.eventLoop))
        do throws(RunnerError) {
            try runner.start(model, slotHash: slotHash, body: body, traceParent: traceParent, reply: reply, executor: executor)
        } catch {
            finish(error)
        }
    }

    /// The call's task started: it is cancelled if the stream goes first.
    func began(_ execution: CallExecution) {
        if case .ended = phase {
            execution.cancel()
        } else {
            self.execution = execution
        }
    }

    /// An Engage that ends before any call: `finished` with the error, as Fn's runner answers.
    private func finish(_ error: RunnerError) {
        phase = .running
        _ = send([PureRunner.finished(error: error, call: nil)], end: true)
    }

    // MARK: writing

    /// Writes `messages`, after the answer's head if it has not gone yet; with `end`, the OK
    /// trailers after them. The future completes once the last is written, and fails when the
    /// stream ended before.
    func send(_ messages: [EngageAnswer], end: Bool) -> EventLoopFuture<Void> {
        send(end: end, bytes: messages.reduce(0) { $0 + 5 + $1.encodedSize }) { buffer in
            for m in messages { m.write(framed: &buffer) }
        }
    }

    /// The same for RunnerProtocol's other answers, as SwiftProtobuf writes them.
    func send<M: Message>(_ messages: [M], end: Bool) -> EventLoopFuture<Void> {
        send(end: end, bytes: messages.isEmpty ? 0 : 256) { GRPCWire.write(messages, into: &$0) }
    }

    /// `bytes`: about how many `write` appends, none when 0.
    private func send(end: Bool, bytes: Int, _ write: (inout ByteBuffer) -> Void) -> EventLoopFuture<Void> {
        guard let context else { return executor.loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        if case .ended = phase { return context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        if !headersSent {
            headersSent = true
            context.write(frame(.headers(.init(headers: GRPCWire.responseHeaders))), promise: nil)
        }
        let promise = context.eventLoop.makePromise(of: Void.self)
        if bytes > 0 {
            var buffer = context.channel.allocator.buffer(capacity: bytes)
            write(&buffer)
            context.write(frame(.data(.init(data: .byteBuffer(buffer)))), promise: end ? nil : promise)
        }
        if end {
            ended()
            context.write(frame(.headers(.init(headers: GRPCWire.okTrailers, endStream: true))), promise: promise)
        } else if bytes == 0 {
            promise.succeed()
        }
        context.flush()
        return promise.futureResult
    }

    private func answerUnary<M: Message>(_ message: M) {
        phase = .running
        _ = send([message], end: true)
    }

    /// Ends the RPC with `failure`: trailers only if nothing was answered yet. A running call
    /// is cancelled.
    func fail(_ failure: GRPCWire.Failure) {
        guard let context else { return }
        if case .ended = phase { return }
        let trailersOnly = !headersSent
        headersSent = true
        endAndCancelCall()
        context.writeAndFlush(
            frame(.headers(.init(headers: GRPCWire.trailers(failure, trailersOnly: trailersOnly), endStream: true))),
            promise: nil)
    }

    /// A request that is not gRPC: an HTTP status and nothing else.
    private func answerHTTP(status: String) {
        guard let context else { return }
        headersSent = true
        ended()
        context.writeAndFlush(frame(.headers(.init(headers: [":status": status], endStream: true))), promise: nil)
    }

    private func frame(_ payload: HTTP2Frame.FramePayload) -> NIOAny {
        NIOAny(HTTP2Frame(streamID: id, payload: payload))
    }

    private func ended() {
        phase = .ended
        deadline?.cancel()
        deadline = nil
    }
}

/// How a call's task, on this loop or off it, answers on its stream: every write happens on
/// the stream's loop, in the order it was asked for.
struct StreamReply: Sendable {
    private let handler: NIOLoopBound<RunnerStream>

    init(_ handler: NIOLoopBound<RunnerStream>) { self.handler = handler }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (RunnerStream) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        let (handler, loop) = (self.handler, self.handler.eventLoop)
        if loop.inEventLoop { return body(handler.value) }
        return loop.flatSubmit { body(handler.value) }
    }

    func began(_ execution: CallExecution) {
        let loop = handler.eventLoop
        _ = onLoop { h in
            h.began(execution)
            return loop.makeSucceededVoidFuture()
        }
    }

    /// Written without waiting (the answer's last messages).
    func write(_ messages: [EngageAnswer], end: Bool) {
        _ = onLoop { $0.send(messages, end: end) }
    }

    /// Written, and waited for: a slow LB slows the function, not the memory. False: the stream
    /// is gone.
    func send(_ messages: [EngageAnswer]) async -> Bool {
        do {
            try await onLoop { $0.send(messages, end: false) }.get()
            return true
        } catch {
            return false
        }
    }
}

/// Reads propagation keys (`traceparent`) from a stream's request headers.
struct HPACKExtractor: Extractor {
    func extract(key: String, from headers: HPACKHeaders) -> String? { headers.first(name: key.lowercased()) }
}
