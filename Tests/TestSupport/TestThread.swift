import RunnerOS

/// Runs a test's own blocking work (a whole exchange with a server under test, a poll that may
/// last thirty seconds, an image import) on a new thread of its own.
///
/// Not on `BlockingThread`: that pool is the runner's, capped at a few threads per CPU, and the
/// agents and sandboxes that tests run in this same process start, freeze and thaw containers
/// on it (8 threads on this 2-CPU machine): a test's wait of up to thirty seconds there holds a
/// container start of another test back. Nor on the cooperative pool, whose two threads here
/// every async test shares. A thread per call costs tens of microseconds, which no test notices.
public enum TestThread {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            DedicatedThread.start("a test's blocking work", name: "test-blocking") { c.resume(with: Result { try body() }) }
        }
    }
}
