import Logging
import RunnerOS
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Tells the service manager (systemd, `Type=notify`) what the node is doing: READY=1 once
/// `ready` returns (the listeners are open and the sandbox pool is full), STOPPING=1 as soon
/// as a SIGTERM or SIGINT starts the drain (the group's own shutdown reaches this service only
/// after the HTTP server has drained), and WATCHDOG=1 at half the unit's WatchdogSec.
struct ServiceManagerService: Service {
    let notifier: ServiceManagerNotifier
    let ready: @Sendable () async -> String
    let logger: Logger

    /// Whether STOPPING=1 went out (a signal and the group's shutdown both lead there).
    private final class Once: Sendable {
        private let done = Mutex(false)
        func first() -> Bool { done.withLock { d in defer { d = true }; return !d } }
    }

    func run() async throws {
        let stopping = Once()
        let notifier = self.notifier
        let logger = self.logger
        @Sendable func stop() {
            guard stopping.first() else { return }
            if let error = notifier.send("STOPPING=1\nSTATUS=draining") {
                logger.warning("cannot tell the service manager the node stops", metadata: ["error": "\(error)"])
            }
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                // Until the group's shutdown reaches this service (cancelling the wait): a
                // service that returns earlier would end the group as a failure.
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { stop() }
                }
                group.addTask {
                    let status = await ready()
                    guard !Task.isCancelled else { return }
                    if let error = notifier.send("READY=1\nSTATUS=\(status)") {
                        logger.warning("cannot tell the service manager the node is ready", metadata: ["error": "\(error)"])
                    } else {
                        logger.info("told the service manager the node is ready", metadata: ["status": "\(status)"])
                    }
                    guard let interval = notifier.watchdogInterval else { return }
                    while !Task.isCancelled {
                        notifier.send("WATCHDOG=1")
                        try? await Task.sleep(for: interval)
                    }
                }
                await group.waitForAll()
            }
        }
        stop()
    }
}
