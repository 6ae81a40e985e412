import LoopExecutors
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import RunnerOS
import ServiceLifecycle
import Synchronization

/// The pure runner's gRPC server (HTTP/2; plaintext unless `tls` is given, as Fn's runners)
/// as a service of the server's group: on graceful shutdown it stops taking connections, tells
/// the LBs with GOAWAY, lets the open streams finish, and returns once every connection closed.
///
/// Each RPC is one `RunnerStream` of its connection's `RunnerConnectionHandler`, on the
/// connection's event loop, and so is each hot call's task: an Engage call wakes no thread of
/// the server but its connection's loop. The cost: Fn's LB keeps one HTTP/2 connection to a
/// runner, so one LB's calls to a node use one of its loops. Connections from other LBs go to
/// other loops.
public final class GRPCRunnerService: Service, Sendable {
    let host: String
    let port: Int
    let runner: PureRunner
    let tls: RunnerTLS?
    let tracing: Bool
    let group: MultiThreadedEventLoopGroup

    private enum State {
        case idle
        case listening(any Channel)
        case stopping
    }
    private struct Connections {
        var state = State.idle
        var open: [ObjectIdentifier: any Channel] = [:]
        var port: Int?
    }
    private let connections = Mutex(Connections())
    private let stopAsked = AsyncEvent()

    /// `tracing`: the node traces, so each stream's call joins the LB's trace (its metadata's
    /// `traceparent`).
    public init(host: String, port: Int, runner: PureRunner, tls: RunnerTLS? = nil, tracing: Bool = false) {
        self.host = host
        self.port = port
        self.runner = runner
        self.tls = tls
        self.tracing = tracing
        group = MultiThreadedEventLoopGroup.singleton
    }

    /// The port it listens on (useful with port 0), once `run()` has bound it; nil when it
    /// could not, or stopped first.
    public var listeningPort: Int? {
        get async {
            _ = await bound.wait()
            return connections.withLock { $0.port }
        }
    }
    private let bound = AsyncEvent()

    /// Stops taking connections; `run()` returns once the open ones finished their streams.
    public func stop() {
        let (server, open): ((any Channel)?, [any Channel]) = connections.withLock { c in
            switch c.state {
            case .listening(let server):
                c.state = .stopping
                return (server, Array(c.open.values))
            case .idle, .stopping:
                c.state = .stopping
                return (nil, [])
            }
        }
        server?.close(promise: nil)
        // Each connection sends GOAWAY, and closes once its streams have ended.
        for connection in open { connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        stopAsked.fire()
    }

    public func run() async throws {
        defer { bound.fire() }
        let sslContext = try tls.map { try $0.makeContext() }
        let server: any Channel
        do {
            server = try await bootstrap(ssl: sslContext).bind(host: host, port: port).get()
        } catch {
            throw RunnerError(.system, "the gRPC listener cannot listen on \(host):\(port): \(error)", step: "bind gRPC listener")
        }
        let listening: Bool = connections.withLock { c in
            guard case .idle = c.state else { return false }
            c.state = .listening(server)
            c.port = server.localAddress?.port
            return true
        }
        bound.fire()
        if listening {
            await withGracefulShutdownHandler {
                _ = await stopAsked.wait()
            } onGracefulShutdown: {
                self.stop()
            }
        }
        // Stopped, cancelled, or stopped before it listened: nothing more is taken.
        stop()
        try? await server.closeFuture.get()
        while let next = connections.withLock({ $0.open.values.first }) {
            try? await next.closeFuture.get()
            closed(next)
        }
    }

    private func bootstrap(ssl: NIOSSLContext?) -> ServerBootstrap {
        let executors = PinnedExecutors(group)
        let (runner, tracing) = (self.runner, self.tracing)
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configure(
                        channel, ssl: ssl, runner: runner, executor: executors.executor(for: channel.eventLoop), tracing: tracing)
                    self?.opened(channel)
                }
            }
    }

    private func opened(_ channel: any Channel) {
        let stopping: Bool = connections.withLock { c in
            c.open[ObjectIdentifier(channel)] = channel
            if case .stopping = c.state { return true }
            return false
        }
        // Accepted while stopping: told to go at once.
        if stopping { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        channel.closeFuture.whenComplete { [weak self] _ in self?.closed(channel) }
    }

    private func closed(_ channel: any Channel) {
        _ = connections.withLock { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// TLS (when configured), HTTP/2 and the connection's lifecycle (GOAWAY on shutdown,
    /// keepalive pings), and a `RunnerStream` for each stream the LB opens.
    static func configure(
        _ channel: any Channel, ssl: NIOSSLContext?, runner: PureRunner, executor: EventLoopTaskExecutor, tracing: Bool
    ) throws {
        let sync = channel.pipeline.syncOperations
        if let ssl { try sync.addHandler(NIOSSLServerHandler(context: ssl)) }
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .initialWindowSize, value: targetWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: 1 << 14),
            HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
        ]
        let lifecycle = NIOHTTP2ServerConnectionManagementHandler(eventLoop: channel.eventLoop, configuration: .defaults)
        // No stream multiplexer: each stream's frames reach `RunnerConnectionHandler`, and the
        // lifecycle handler counts streams from NIOHTTP2's events.
        try sync.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: connection))
        try sync.addHandler(lifecycle)
        try sync.addHandler(RunnerConnectionHandler(runner: runner, executor: executor, tracing: tracing, targetWindow: targetWindow))
    }

    /// Each stream's and connection's flow-control window: HTTP/2's default.
    static let targetWindow = (1 << 16) - 1

    /// The streams (calls) one connection may have open at once, advertised in the server's
    /// SETTINGS. Fn's LB keeps one connection per runner and, with grpc-go, opens as many
    /// streams on it as the server allows; Fn's grpc-go runner advertises no limit. Unsaid,
    /// NIOHTTP2 enforces 100 and treats the 101st as a connection error: the GOAWAY would end
    /// every call on the connection. The agent's own rules (memory, CPU, waits) bound what
    /// runs; this only bounds what one LB may hold open.
    static let maxConcurrentStreams = 1 << 16
}

/// One executor per event loop of the group, made once: what a hot call's task on that loop
/// prefers.
struct PinnedExecutors: Sendable {
    private let executors: [EventLoopTaskExecutor]

    init(_ group: MultiThreadedEventLoopGroup) {
        executors = group.makeIterator().map { EventLoopTaskExecutor($0) }
    }

    func executor(for loop: any EventLoop) -> EventLoopTaskExecutor {
        executors.first { $0.loop === loop } ?? EventLoopTaskExecutor(loop)
    }
}
