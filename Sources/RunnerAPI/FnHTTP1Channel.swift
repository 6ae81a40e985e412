import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// Hummingbird's HTTP/1.1 channel, set up as `HTTP1Channel.setup` sets it up (the same
/// decoder limits, additional handlers and async channel) but with `HTTP1ServerCodec` in place
/// of NIO's response encoder and the HTTP types codec, and with `InvokeChannelHandler` in place
/// of the connection state handler: it keeps the same idle timeout and graceful shutdown, and
/// answers invokes on the connection's event loop; every other request reaches the router as
/// before.
struct FnHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let api: FnAPI

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture { [api, http1] in
            let configuration = http1.configuration
            let pipeline = channel.pipeline.syncOperations
            try Self.addServerCodec(pipeline, decoder: configuration.httpDecoder)
            try pipeline.addHandlers(configuration.additionalChannelHandlers())
            try pipeline.addHandler(InvokeChannelHandler(api: api, loop: channel.eventLoop, idleTimeout: configuration.idleTimeout))
            return try Value(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value: Value, logger: Logger) async { await http1.handle(value: value, logger: logger) }

    /// NIO's request decoder with `limits`, and `HTTP1ServerCodec` behind it: HTTP/1 bytes in,
    /// HTTP types request parts up the pipeline, HTTP types answers out as bytes.
    static func addServerCodec(_ pipeline: ChannelPipeline.SynchronousOperations, decoder limits: HTTP1Channel.Configuration.DecoderConfiguration) throws {
        let decoder = HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: decoderLimits(limits))
        try pipeline.addHandler(ByteToMessageHandler(decoder))
        try pipeline.addHandler(HTTP1ServerCodec())
    }

    /// Hummingbird's decoder limits as NIO's decoder takes them, as `HTTP1Channel.setup` makes them.
    static func decoderLimits(_ limits: HTTP1Channel.Configuration.DecoderConfiguration) -> NIOHTTPDecoderLimitConfiguration {
        var configuration = NIOHTTPDecoderLimitConfiguration()
        configuration.maxHeaderFieldSize = limits.maxHeaderFieldSize
        configuration.maxHeaderListSize = limits.maxHeaderListSize
        configuration.maxHeaderFieldCount = limits.maxHeaderFieldCount
        return configuration
    }
}
