import GRPCCore
import GRPCNIOTransportHTTP2
import ServiceLifecycle

/// The pure runner's gRPC server (HTTP/2; plaintext unless `tls` is given, as Fn's runners)
/// as a service of the server's group: on graceful shutdown it stops taking streams and lets
/// the open ones finish.
public struct GRPCRunnerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>

    /// `tracing`: the node traces, so each stream's call joins the LB's trace (its metadata's
    /// `traceparent`).
    public init(host: String, port: Int, runner: PureRunner, tls: RunnerTLS? = nil, tracing: Bool = false) {
        server = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: host, port: port), transportSecurity: tls?.transportSecurity ?? .plaintext),
            services: [runner], interceptors: tracing ? [TraceContextInterceptor()] : [])
    }

    /// The port it listens on once started (useful with port 0); nil before that.
    public var listeningPort: Int? {
        get async { try? await server.transport.listeningAddress.ipv4?.port }
    }

    /// Stops taking streams; `run()` returns once the open ones finished.
    public func stop() { server.beginGracefulShutdown() }

    public func run() async throws {
        let server = self.server
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
