import Logging
import Runner
import RunnerOS
import RunnerStore
import ServiceLifecycle

/// Keeps the call records bounded: every `interval`, deletes calls (and their logs) older than
/// `maxAge`, then all but the newest `maxPerFn` of each fn. A service of the server's group.
public struct CallPruner: Service {
    public struct Configuration: Sendable {
        /// FN_CALL_RETENTION_SECONDS (default 7 days; 0 keeps calls of any age).
        public var maxAgeSeconds: UInt64 = 7 * 86_400
        /// FN_CALL_RETENTION_PER_FN (default 10,000; 0 keeps any number).
        public var maxPerFn: Int = 10_000
        public var interval: Duration = .seconds(60)

        public init() {}

        public static func fromEnvironment(_ values: [String: String]) throws(RunnerError) -> Configuration {
            let env = FnEnvironment(values)
            var c = Configuration()
            c.maxAgeSeconds = UInt64(try env.int("FN_CALL_RETENTION_SECONDS", default: Int(c.maxAgeSeconds), minimum: 0))
            c.maxPerFn = try env.int("FN_CALL_RETENTION_PER_FN", default: c.maxPerFn, minimum: 0)
            return c
        }
    }

    let configuration: Configuration
    let store: Store
    let logger: Logger

    public init(configuration: Configuration, store: Store, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await pruneOnce()
            let interval = configuration.interval
            _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pruning pass; failures are logged and retried next time.
    public func pruneOnce() async {
        let before = configuration.maxAgeSeconds == 0
            ? nil : WallClock.rfc3339(WallClock.nowNanos() &- configuration.maxAgeSeconds * 1_000_000_000, millis: true)
        do {
            let n = try await store.pruneCalls(before: before, keepPerFn: configuration.maxPerFn == 0 ? nil : configuration.maxPerFn)
            if n > 0 { logger.info("pruned call records", metadata: ["count": "\(n)"]) }
        } catch {
            logger.warning("pruning call records failed", metadata: ["error": "\(error)"])
        }
    }
}
