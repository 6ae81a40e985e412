import Dispatch
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Passes SIGINT, SIGTERM and SIGHUP on to the container's init; a second one kills the
/// container, so `fnrunner run` never leaves a container behind when it is interrupted.
final class SignalForwarder {
    private let sources: [any DispatchSourceSignal]

    init(container: Container) {
        let queue = DispatchQueue(label: "fnrunner.signals")
        let received = SignalCount()
        sources = [SIGINT, SIGTERM, SIGHUP].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                if received.increment() == 1 {
                    try? container.signal(sig)
                } else {
                    try? container.kill()
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() {
        for s in sources { s.cancel() }
    }
}

/// Only touched on the forwarder's serial queue.
private final class SignalCount: @unchecked Sendable {
    private var count = 0
    func increment() -> Int {
        count += 1
        return count
    }
}
