import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The HTTP/1 server codec of the API's connections: request parts from NIOHTTP1's decoder
/// to HTTP types, and HTTP types answers to bytes. It takes the place of two library handlers,
/// NIOHTTPTypesHTTP1's `HTTP1ToHTTPServerCodec` and NIOHTTP1's `HTTPResponseEncoder` behind it
/// (`FnHTTP1Channel` puts it where Hummingbird puts them), and converts as they do, with three
/// differences in cost and none in bytes:
/// - a target starting with "/" is kept as it is, without the library's URL parse (which
///   keeps such a target whole anyway, since it has no scheme): that parse was about 1.2%
///   of the event loop's samples under `wrk -c8` on invokes (perf);
/// - an answer's head is written from its `HTTPFields` (`HTTP1ResponseEncoder`), not
///   converted to `HTTPHeaders` and then framed by searching and editing that copy;
/// - what an answer writes before its end or a flush goes out as one write: a whole invoke
///   answer is one buffer (head and body) instead of three writes through the pipeline.
///   A body chunk larger than `copyLimit` is passed on as it is, not copied.
///
/// Every other target form (absolute-form, "*", authority-form) goes through the library's
/// conversion.
final class HTTP1ServerCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = IOData

    /// The largest body chunk copied into a held buffer; a larger one is written as it is.
    static let copyLimit = 8 << 10

    private var encoder = HTTP1ResponseEncoder()
    /// Answer bytes not passed on yet, and the promises of the writes that made them.
    private var held: ByteBuffer?
    private var heldPromises: [EventLoopPromise<Void>] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            encoder.requestArrived(head.method)
            do {
                context.fireChannelRead(wrapInboundOut(.head(try Self.request(head))))
            } catch {
                context.fireErrorCaught(error)
            }
        case .body(let body):
            context.fireChannelRead(wrapInboundOut(.body(body)))
        case .end(let trailers):
            context.fireChannelRead(wrapInboundOut(.end(trailers.map { HTTPFields($0, splitCookie: false) })))
        }
    }

    /// The request a head converts to: the same as the library's (plain http, cookies as they
    /// came), the target kept as it is when it starts with "/".
    static func request(_ head: HTTPRequestHead) throws -> HTTPRequest {
        guard head.uri.utf8.first == UInt8(ascii: "/") else { return try HTTPRequest(head, secure: false, splitCookie: false) }
        return HTTPRequest(
            method: try HTTPRequest.Method(head.method), scheme: "http", authority: head.headers["Host"].first, path: head.uri,
            headerFields: HTTPFields(head.headers, splitCookie: false))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            hold(context, promise) { encoder.head(response, into: &$0) }
        case .body(let chunk):
            if encoder.suppressesBody {
                // As the library's encoder does: nothing is sent, and the writer learns why.
                promise?.fail(NIOHTTPResponseEncoderError.responseBodyNotAllowed)
                return
            }
            let count = chunk.readableBytes
            if count > Self.copyLimit {
                hold(context, nil) { encoder.bodyPrefix(count: count, into: &$0) }
                pass(context)
                context.write(wrapOutboundOut(.byteBuffer(chunk)), promise: promise)
                hold(context, nil) { encoder.bodySuffix(count: count, into: &$0) }
            } else {
                hold(context, promise) {
                    encoder.bodyPrefix(count: count, into: &$0)
                    $0.writeImmutableBuffer(chunk)
                    encoder.bodySuffix(count: count, into: &$0)
                }
            }
        case .end(let trailers):
            hold(context, promise) { encoder.end(trailers, into: &$0) }
            pass(context)
        }
    }

    func flush(context: ChannelHandlerContext) {
        pass(context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Written before the close, as they would have been without the holding.
        pass(context)
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) { pass(context) }

    /// Appends to the held bytes.
    private func hold(_ context: ChannelHandlerContext, _ promise: EventLoopPromise<Void>?, _ append: (inout ByteBuffer) -> Void) {
        var buffer = held ?? context.channel.allocator.buffer(capacity: 512)
        held = nil  // the buffer is not shared while it grows
        append(&buffer)
        held = buffer
        if let promise { heldPromises.append(promise) }
    }

    /// Passes the held bytes on as one write, whose end completes their writes' promises.
    private func pass(_ context: ChannelHandlerContext) {
        let promises = heldPromises
        guard let buffer = held, buffer.readableBytes > 0 || !promises.isEmpty else { return }
        held = nil
        heldPromises = []
        let promise: EventLoopPromise<Void>?
        switch promises.count {
        case 0: promise = nil
        case 1: promise = promises[0]
        default:
            promise = context.eventLoop.makePromise()
            promise!.futureResult.whenComplete { result in for p in promises { p.completeWith(result) } }
        }
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
    }
}
