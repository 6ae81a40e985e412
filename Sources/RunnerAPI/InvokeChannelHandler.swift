import HTTPTypes
import LoopExecutors
import NIOCore
import NIOHTTPTypes
import Runner
import RunnerStore

/// `POST /invoke/{fn_id}` and HTTP triggers (`/t/{app}/…`) answered on their connection's event
/// loop, in front of Hummingbird's router.
///
/// Hummingbird hands every request from the event loop to a task on the cooperative pool, and
/// its answer back through an async writer. Under `wrk -c8` that costs serve about 55 µs of CPU
/// a request (`GET /version`), where a channel handler writing the same answer costs about
/// 17 µs. A call taken here reads its body on the loop, runs its task on the loop (so the
/// function's answer wakes that loop and no other thread), and writes its answer there.
///
/// It takes the usual calls and nothing else: a plain fn id or trigger path, no body or a
/// Content-Length one within FN_MAX_REQUEST_SIZE, not detached, not HEAD, on a server that does
/// not trace requests, on a connection where the router owes no answer. Every other request
/// passes on untouched, and the router answers it as before (detached calls, 413s, unknown
/// paths, traced requests). Requests pipelined behind a call in progress wait for its answer,
/// in order, and the connection is read no further meanwhile.
///
/// It also keeps the connection's life in place of Hummingbird's connection state handler (the
/// idle timeout and the graceful shutdown, `HTTPConnectionLifecycle`), and its client
/// watcher for the router's calls (`ClientConnectionWatcher`): every part read and written
/// passes one handler fewer.
final class InvokeChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        case idle
        /// A request the router answers: its parts pass on up to its end.
        case passing
        /// A call's body is being read.
        case reading(head: HTTPRequest, target: InvokeTarget, body: [UInt8])
        /// The call runs and its answer is written.
        case answering(Answer)
    }
    private struct Answer {
        let serial: UInt64
        /// The client asked to close the connection after it.
        let closeAfter: Bool
        /// The task answering (and running the call), to cancel if the client leaves; nil until
        /// it first waited.
        var task: Task<Void, Never>?
    }
    private var answers: UInt64 = 0
    private var state = State.idle
    /// Requests passed on whose answer's end the router has not written yet.
    private var routerAnswersOwed = 0
    /// What arrived while a call was answered, passed on in order after it.
    private var held: [HTTPRequestPart] = []
    private var heldError: (any Error)?
    private var heldInputClosed = false
    private var heldRead = false
    /// The client closed its side or the connection broke: a call of its is cancelled.
    private(set) var clientGone = false
    /// A request the router took asked to close the connection: every later one goes there too
    /// (the router reads none of them).
    private var routerCloses = false
    /// `finish` is passing held parts on: an answer that ends inside it does not start another
    /// replay (a deep stack of nested ones), the running one goes on.
    private var replaying = false
    /// An answer this handler wrote closed the connection's output: nothing after it is read.
    private var outputClosed = false
    private var lifecycle: HTTPConnectionLifecycle
    private var idleTimer: Scheduled<Void>?
    private let watcher = ClientConnectionWatcher()
    private let api: FnAPI
    /// Where calls taken here run: the connection's loop.
    private let executor: EventLoopTaskExecutor

    /// `idleTimeout`: nil never closes a connection for being idle.
    init(api: FnAPI, loop: any EventLoop, idleTimeout: TimeAmount?) {
        self.api = api
        executor = EventLoopTaskExecutor(loop)
        lifecycle = HTTPConnectionLifecycle(idleTimeout: idleTimeout, now: .now())
    }

    var isAnswering: Bool {
        if case .answering = state { return true }
        return false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        lifecycle.read(part, now: .now())
        take(part, context)
    }

    private func take(_ part: HTTPRequestPart, _ context: ChannelHandlerContext) {
        if outputClosed { return }
        switch state {
        case .answering:
            held.append(part)
        case .passing:
            if case .end = part { state = .idle }
            context.fireChannelRead(wrapInboundOut(part))
        case .reading(let head, let target, var body):
            switch part {
            case .body(let chunk):
                state = .idle  // the array is not shared while it grows
                body.append(contentsOf: chunk.readableBytesView)
                state = .reading(head: head, target: target, body: body)
            case .end:
                start(head, target, body: body, context)
            case .head:
                // The decoder ends a request before it begins the next one: not a request
                // this handler can answer, nor the router.
                state = .idle
                context.close(promise: nil)
            }
        case .idle:
            if case .head(let head) = part {
                if routerAnswersOwed == 0, !routerCloses, let target = InvokeTarget(head, api.configuration) {
                    var body: [UInt8] = []
                    // Room for a usual body at once; a large one grows as it arrives.
                    body.reserveCapacity(min(Int(head.headerFields.value(.contentLength) ?? "") ?? 0, 64 << 10))
                    state = .reading(head: head, target: target, body: body)
                    return
                }
                routerAnswersOwed += 1
                // As Hummingbird's reader decides it.
                if head.headerFields.value(.connection) == "close" { routerCloses = true }
                state = .passing
            }
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    // MARK: the call and its answer

    private func start(_ head: HTTPRequest, _ target: InvokeTarget, body: [UInt8], _ context: ChannelHandlerContext) {
        answers &+= 1
        // As Hummingbird's reader decides it for the router's answers.
        state = .answering(Answer(serial: answers, closeAfter: head.headerFields.value(.connection) == "close"))
        let (api, serial) = (self.api, answers)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loopContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        // Runs here up to its first wait, then on this loop: no thread of the pool is woken.
        let task = Task.immediate(executorPreference: executor) {
            await InvokeChannelHandler.answer(target, head, body, api: api, handler, loopContext, loop)
        }
        guard case .answering(var answer) = state, answer.serial == serial else { return }
        answer.task = task
        state = .answering(answer)
        if clientGone { task.cancel() }
    }

    /// What `FnAPI.respond` does for the router's invokes and triggers, with the call run in
    /// this task and its events written as they happen (`LoopAnswerSink`).
    private static func answer(
        _ target: InvokeTarget, _ requestHead: HTTPRequest, _ body: [UInt8], api: FnAPI,
        _ handler: NIOLoopBound<InvokeChannelHandler>, _ context: NIOLoopBound<ChannelHandlerContext>, _ loop: any EventLoop
    ) async {
        let call: Call
        let sink: LoopAnswerSink
        let cold: Bool
        do {
            let definition: DefinitionCache.Definition
            var request: FunctionRequest
            let shape: FnAPI.AnswerShape
            switch target {
            case .invoke(let fnID):
                definition = try await api.invoked(fnID)
                (request, shape) = (api.invokeRequest(requestHead, body: body), FnAPI.invokeHead)
            case .trigger(let appName, let source):
                definition = try await api.triggered(appName: appName, source: source)
                (request, shape) = api.triggerRequest(requestHead, fn: definition.fn, body: body)
            }
            // The id first: the sink puts it in the answer's head.
            request.callID = CallID.make()
            sink = LoopAnswerSink(handler: handler, context: context, loop: loop, shape: shape, callID: request.callID)
            call = try api.makeCall(definition, request, deliveringTo: sink)
            cold = definition.fn.format == FunctionFormat.cold.rawValue
        } catch {
            handler.value.writeWhole(error.httpAnswer(), context.value)
            handler.value.finish(context.value)
            return
        }
        if cold {
            // A cold call starts and removes its container in its task, work that may block,
            // which an event loop must not: it runs on the cooperative pool, and the sink
            // writes on this loop. A hot call stays on this loop.
            await withTaskExecutorPreference(globalConcurrentExecutor) { await api.agent.run(call, deliveringTo: sink) }
        } else {
            await api.agent.run(call, deliveringTo: sink)
        }
        handler.value.finish(context.value)
    }

    /// An answer whose body is all there: with its length and the date.
    func writeWhole(_ answer: (HTTPResponse.Status, HTTPFields, ByteBuffer), _ context: ChannelHandlerContext) {
        let (status, fields, body) = answer
        var headers = fields
        // Appended when absent (the usual case), which is no search and no array made per set.
        if fields.contains(where: { $0.name == .contentLength || $0.name == .date }) {
            headers[.contentLength] = String(body.readableBytes)
            headers[.date] = HTTPDate.now()
        } else {
            headers.append(HTTPField(name: .contentLength, value: String(body.readableBytes)))
            headers.append(HTTPField(name: .date, value: HTTPDate.now()))
        }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: headers))), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(body)), promise: nil) }
        writeEnd(context)
    }

    /// An answer's end, flushed; the connection closes after it when the server is shutting down.
    func writeEnd(_ context: ChannelHandlerContext) {
        let next = lifecycle.answerEnded(now: .now())
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        apply(next, context)
    }

    /// The answer is written: what arrived meanwhile goes on, in order.
    private func finish(_ context: ChannelHandlerContext) {
        guard case .answering(let answer) = state else { return }
        state = .idle
        let closeAfter = answer.closeAfter
        if closeAfter || !context.channel.isActive {
            // The client asked to close: its side is closed once the answer is out (a full
            // close would drop what the socket has not sent yet), as the router does. Nothing
            // held is answered then, nor on a connection that broke.
            held = []
            if closeAfter {
                outputClosed = true
                context.close(mode: .output, promise: nil)
            }
            return
        }
        if replaying { return }
        replaying = true
        defer { replaying = false }
        let replayed = !held.isEmpty
        var next = 0
        while !isAnswering, next < held.count, context.channel.isActive {
            next += 1
            take(held[next - 1], context)
        }
        held.removeFirst(min(next, held.count))
        if replayed { context.fireChannelReadComplete() }
        if isAnswering { return }
        // A request cut short by the error or the client's end is nobody's to answer.
        if heldError != nil || heldInputClosed, case .reading = state { state = .idle }
        if let error = heldError {
            heldError = nil
            context.fireErrorCaught(error)
        }
        if heldInputClosed {
            heldInputClosed = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if heldRead {
            heldRead = false
            context.read()
        }
    }

    // MARK: the connection

    /// While a call is answered the connection is read on until a request arrives behind it:
    /// a client that asks once at a time keeps the socket's read interest (holding the read
    /// would cost an `epoll_ctl` off and one on again per call), and a pipelining one is read
    /// no further than the read that brought its next request.
    func read(context: ChannelHandlerContext) {
        if isAnswering && !held.isEmpty { heldRead = true } else { context.read() }
    }

    /// The router's answers.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        if routerAnswersOwed > 0 { routerAnswersOwed -= 1 }
        let next = lifecycle.answerEnded(now: .now())
        if next == .close {
            context.writeAndFlush(data, promise: promise)
        } else {
            context.write(data, promise: promise)
        }
        apply(next, context)
    }

    private func apply(_ action: HTTPConnectionLifecycle.Action, _ context: ChannelHandlerContext) {
        switch action {
        case .none: break
        case .close: context.close(promise: nil)
        case .armIdleTimer(let deadline):
            guard idleTimer == nil else { return }
            idleTimer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) { [self] in
                idleTimer = nil
                apply(lifecycle.idleTimerFired(now: .now()), context)
            }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        watcher.keep(for: context.channel)
        if context.channel.isActive { apply(lifecycle.activated(now: .now()), context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        apply(lifecycle.activated(now: .now()), context)
        context.fireChannelActive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .answering:
            if heldError == nil { heldError = error }
        case .reading:
            // The request cannot complete; the router's reader answers the error (400).
            state = .idle
            context.fireErrorCaught(error)
        case .idle, .passing:
            context.fireErrorCaught(error)
        }
    }

    /// Not passed on, as Hummingbird's connection state handler passes it on to nothing: the
    /// async channel behind ends its streams when the pipeline is torn down.
    func channelInactive(context: ChannelHandlerContext) {
        lifecycle.deactivated()
        clientLeft()
    }

    /// The connection closed and its pipeline is torn down: a call still answered here has no
    /// one left to answer, and is cancelled, as when the client closes its side.
    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        clientLeft()
        watcher.forget(context.channel)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The server shuts down gracefully: the answers owed are written first.
        if event is ChannelShouldQuiesceEvent { return apply(lifecycle.quiesce(), context) }
        guard case .inputClosed? = event as? ChannelEvent else { return context.fireUserInboundEventTriggered(event) }
        // A client that closes its side has gone, as in Go's net/http. The router's reader
        // would end the connection's output on this: it hears of it once the answer is out.
        clientLeft()
        switch state {
        case .answering: heldInputClosed = true
        case .reading:
            state = .idle
            context.fireUserInboundEventTriggered(event)
        case .idle, .passing: context.fireUserInboundEventTriggered(event)
        }
    }

    private func clientLeft() {
        clientGone = true
        watcher.clientLeft()
        if case .answering(let answer) = state { answer.task?.cancel() }
    }
}
