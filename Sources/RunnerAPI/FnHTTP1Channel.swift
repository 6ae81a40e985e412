import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 channel with `InvokeChannelHandler` behind its connection state
/// handler, so invokes are answered on the connection's event loop and every other request
/// reaches the router as before, and `OriginFormServerCodec` in place of its codec.
struct FnHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let api: FnAPI

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { [api] value in
            let pipeline = channel.pipeline.syncOperations
            let codec = try pipeline.handler(type: HTTP1ToHTTPServerCodec.self)
            try pipeline.addHandler(OriginFormServerCodec(), position: .after(codec))
            pipeline.removeHandler(codec, promise: nil)
            let state = try pipeline.handler(type: HTTPConnectionStateHandler.self)
            try pipeline.addHandler(InvokeChannelHandler(api: api, loop: channel.eventLoop), position: .after(state))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async { await http1.handle(value: value, logger: logger) }
}
