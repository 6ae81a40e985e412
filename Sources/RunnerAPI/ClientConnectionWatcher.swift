import NIOCore
import Synchronization

/// Tells a call that its client went away, so the call is cancelled instead of running on for
/// nobody (Fn's Go server cancels the request context the same way).
///
/// One per connection, in its channel pipeline (`FnAPI.server`); a request finds its
/// connection's watcher by its channel. A client that closes its side (FIN; the server allows
/// half-closure) or whose connection breaks counts as gone, as in Go's net/http.
final class ClientConnectionWatcher: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    /// Every part passes on untouched.
    typealias InboundIn = NIOAny

    private struct State {
        var gone = false
        var onGone: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())
    /// The watchers of open connections, by channel.
    private static let live = Mutex<[ObjectIdentifier: ClientConnectionWatcher]>([:])

    func handlerAdded(context: ChannelHandlerContext) {
        let key = ObjectIdentifier(context.channel)
        Self.live.withLock { $0[key] = self }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        let key = ObjectIdentifier(context.channel)
        Self.live.withLock { if $0[key] === self { $0[key] = nil } }
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientLeft()
        handlerRemoved(context: context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed? = event as? ChannelEvent { clientLeft() }
        context.fireUserInboundEventTriggered(event)
    }

    private func clientLeft() {
        let action = state.withLock { s -> (@Sendable () -> Void)? in
            s.gone = true
            defer { s.onGone = nil }
            return s.onGone
        }
        action?()
    }

    /// Runs `onGone` once if the client of `channel` goes away (at once if it already has),
    /// until `stopWatching`. Nil when the channel has no watcher.
    static func watch(_ channel: any Channel, onGone: @escaping @Sendable () -> Void) -> ClientConnectionWatcher? {
        guard let watcher = live.withLock({ $0[ObjectIdentifier(channel)] }) else { return nil }
        let gone = watcher.state.withLock { s -> Bool in
            if !s.gone { s.onGone = onGone }
            return s.gone
        }
        if gone { onGone() }
        return watcher
    }

    func stopWatching() { state.withLock { $0.onGone = nil } }
}
