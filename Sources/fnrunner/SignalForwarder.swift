import Dispatch
import Sandbox
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Passes SIGINT, SIGTERM and SIGHUP on to the container's init; a second one kills the
/// container, so `fnrunner run` never leaves a container behind when it is interrupted.
/// Made before the container starts: a signal's default action would otherwise end
/// `fnrunner run` in the middle of the start and leave the container and its cgroups behind.
/// What arrives before there is a container is held and passed on once there is one. The
/// container's child resets every disposition, so the signals ignored here are not ignored
/// inside it.
final class SignalForwarder {
    private let relay: SignalRelay
    private let sources: [any DispatchSourceSignal]

    init() {
        let queue = DispatchQueue(label: "fnrunner.signals")
        let relay = SignalRelay()
        self.relay = relay
        sources = [SIGINT, SIGTERM, SIGHUP].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { relay.received(sig) }
            source.resume()
            return source
        }
    }

    /// From now on signals go to `container`, and so do those that came during its start.
    func forward(to container: Container) {
        relay.attach(container)
    }

    func cancel() {
        for s in sources { s.cancel() }
    }
}

/// The signals received so far and the container they go to, under one lock: a signal that
/// races the container's arrival is passed on exactly once, by whichever comes second.
private final class SignalRelay: Sendable {
    private struct State {
        var container: Container?
        var count = 0
        var first: Int32 = 0
    }
    private let state = Mutex(State())

    func received(_ sig: Int32) {
        let (container, count) = state.withLock { s -> (Container?, Int) in
            s.count += 1
            if s.count == 1 { s.first = sig }
            return (s.container, s.count)
        }
        if let container { Self.pass(count == 1 ? sig : nil, to: container) }
    }

    func attach(_ container: Container) {
        let (count, first) = state.withLock { s -> (Int, Int32) in
            s.container = container
            return (s.count, s.first)
        }
        if count > 0 { Self.pass(count == 1 ? first : nil, to: container) }
    }

    /// The first signal is passed on; any later one (nil) kills the container.
    private static func pass(_ sig: Int32?, to container: Container) {
        if let sig {
            try? container.signal(sig)
        } else {
            try? container.kill()
        }
    }
}
