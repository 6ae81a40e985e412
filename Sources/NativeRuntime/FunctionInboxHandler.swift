import NIOCore
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one handler of a function socket's channel: passes what it reads to the connection's
/// `FunctionInbox`, holds NIO's next read back while the inbox is full, and tells the inbox
/// when the socket ends, so a waiting call hears of it at once.
final class FunctionInboxHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never

    private let inbox: FunctionInbox
    private var context: ChannelHandlerContext?

    init(_ inbox: FunctionInbox) { self.inbox = inbox }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        inbox.onDrained { loop.execute { handler.value.context?.read() } }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        inbox.onDrained(nil)  // the closure holds this handler, which holds the inbox
        inbox.ended(nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.received(unwrapInboundIn(data))
    }

    func read(context: ChannelHandlerContext) {
        if inbox.holdRead() { return }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.ended(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        inbox.ended(.system("read", errno: (error as? IOError)?.errnoCode ?? EIO, "the function's connection failed"))
        context.close(promise: nil)
    }
}
