import NIOCore
import Synchronization

/// Tells a call the router answers that its client went away, so the call is cancelled instead
/// of running on for nobody (Fn's Go server cancels the request context the same way).
///
/// One per connection, kept by its `InvokeChannelHandler`, which hears of the client's leaving
/// (its side closed, as the server allows half-closure, or the connection broken, as in Go's
/// net/http); a request finds its connection's watcher by its channel.
final class ClientConnectionWatcher: Sendable {
    private struct State {
        var gone = false
        var onGone: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())
    /// The watchers of open connections, by channel.
    private static let live = Mutex<[ObjectIdentifier: ClientConnectionWatcher]>([:])

    /// Makes the watcher `channel`'s, until `forget(channel)`.
    func keep(for channel: any Channel) {
        let key = ObjectIdentifier(channel)
        Self.live.withLock { $0[key] = self }
    }

    func forget(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        Self.live.withLock { if $0[key] === self { $0[key] = nil } }
    }

    /// The client went away: the watch, if any, runs its action once.
    func clientLeft() {
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
