import GRPCCore
import LoopExecutors
import GRPCNIOTransportHTTP2
import NIOPosix
import ServiceLifecycle

/// The pure runner's gRPC server (HTTP/2; plaintext unless `tls` is given, as Fn's runners)
/// as a service of the server's group: on graceful shutdown it stops taking streams and lets
/// the open ones finish.
///
/// Its RPC handlers run on their connection's event loop (`LoopAffineTaskExecutor`), and so
/// does each hot call's own task: an Engage call then wakes no thread of the server but its
/// connection's loop, and serve spends about 40% less CPU on it. The cost: Fn's LB keeps one
/// HTTP/2 connection to a runner, and all of that connection's Engage work, not only its
/// frames, is now one loop's, so one LB's calls to a node use one core of it at most (about
/// 3,000 hot calls a second here). Connections from other LBs go to other loops.
public struct GRPCRunnerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let executor: LoopAffineTaskExecutor

    /// `tracing`: the node traces, so each stream's call joins the LB's trace (its metadata's
    /// `traceparent`).
    public init(host: String, port: Int, runner: PureRunner, tls: RunnerTLS? = nil, tracing: Bool = false) {
        let group = MultiThreadedEventLoopGroup.singleton
        executor = LoopAffineTaskExecutor(group)
        server = GRPCServer(
            transport: .http2NIOPosix(
                address: .ipv4(host: host, port: port), transportSecurity: tls?.transportSecurity ?? .plaintext,
                eventLoopGroup: group),
            services: [runner], interceptors: tracing ? [TraceContextInterceptor()] : [])
    }

    /// The port it listens on once started (useful with port 0); nil before that.
    public var listeningPort: Int? {
        get async { try? await server.transport.listeningAddress.ipv4?.port }
    }

    /// Stops taking streams; `run()` returns once the open ones finished.
    public func stop() { server.beginGracefulShutdown() }

    public func run() async throws {
        let (server, executor) = (self.server, self.executor)
        try await withGracefulShutdownHandler {
            try await LoopAffineTaskExecutor.$current.withValue(executor) {
                try await withTaskExecutorPreference(executor) { try await server.serve() }
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
