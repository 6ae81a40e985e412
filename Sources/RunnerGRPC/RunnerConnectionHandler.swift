import LoopExecutors
import NIOCore
import NIOHTTP2

/// Every RPC of one LB connection, on the connection's event loop: each stream's frames go to
/// its `RunnerStream`, and no stream has a channel of its own.
///
/// A channel per stream (NIOHTTP2's multiplexer) cost each Engage a channel, its pipeline and
/// their promises, and every frame two pipelines each way. Without the multiplexer its other
/// duty is ours: giving back the flow-control windows the client's bodies use up, for the
/// connection and for each stream, or a connection would stall once 64 KiB of request bodies
/// had arrived.
final class RunnerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private var streams: [HTTP2StreamID: RunnerStream] = [:]
    private let runner: PureRunner
    /// Where hot calls' tasks run: this connection's loop.
    private let executor: EventLoopTaskExecutor
    private let tracing: Bool
    /// The window (bytes) each stream and the connection are topped back up to: what the
    /// server's SETTINGS announced.
    private let targetWindow: Int

    init(runner: PureRunner, executor: EventLoopTaskExecutor, tracing: Bool, targetWindow: Int) {
        self.runner = runner
        self.executor = executor
        self.tracing = tracing
        self.targetWindow = targetWindow
    }

    func handlerRemoved(context: ChannelHandlerContext) { closeAll() }

    func channelInactive(context: ChannelHandlerContext) {
        closeAll()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        // Frames of the connection itself (SETTINGS, PING, GOAWAY) are NIOHTTP2's.
        guard frame.streamID != .rootStream else { return }
        if let stream = streams[frame.streamID] {
            stream.receive(frame.payload)
        } else if case .headers = frame.payload {
            // A stream's first frame: NIOHTTP2 passes on only frames its state machine took, so
            // a HEADERS frame of a stream not held here opens a new one.
            let stream = RunnerStream(frame.streamID, context: context, runner: runner, executor: executor, tracing: tracing)
            streams[frame.streamID] = stream
            stream.receive(frame.payload)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let closed as StreamClosedEvent:
            streams.removeValue(forKey: closed.streamID)?.closed()
        case let window as NIOHTTP2WindowUpdatedEvent:
            windowChanged(window, context)
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A stream error: NIOHTTP2 reset the stream; its call is cancelled now. A connection
        // error closes the connection, and `channelInactive` ends its streams.
        if let streamError = error as? NIOHTTP2Errors.StreamError {
            streams.removeValue(forKey: streamError.streamID)?.closed()
        }
        context.fireErrorCaught(error)
    }

    /// The client's data used up part of a window: once the window fell to half its target or
    /// less, it is topped up again (as NIOHTTP2's multiplexer does for its channels).
    private func windowChanged(_ event: NIOHTTP2WindowUpdatedEvent, _ context: ChannelHandlerContext) {
        guard let size = event.inboundWindowSize else { return }
        if event.streamID != .rootStream {
            guard streams[event.streamID]?.isReceiving == true else { return }
        }
        guard let increment = Self.windowIncrement(size: size, target: targetWindow) else { return }
        context.writeAndFlush(
            wrapOutboundOut(HTTP2Frame(streamID: event.streamID, payload: .windowUpdate(windowSizeIncrement: increment))), promise: nil)
    }

    /// How much to give back to a window of `size` bytes, or nil while it is above half of
    /// `target`. A window below zero (only after SETTINGS that shrank it) gets back what it lacks.
    static func windowIncrement(size: Int, target: Int) -> Int? {
        if size >= target { return nil }
        if size >= 0 { return target - size >= size ? target - size : nil }
        return min(-size + target, Int(Int32.max))
    }

    private func closeAll() {
        let open = streams.values
        streams = [:]
        for stream in open { stream.closed() }
    }
}
