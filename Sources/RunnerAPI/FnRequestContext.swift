import Hummingbird
import NIOCore

/// Hummingbird's basic context plus the request's connection, which the invoke paths watch for
/// a client that goes away.
public struct FnRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
