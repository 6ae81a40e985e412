/// A process-wide reader/writer gate for tests that start containers.
///
/// Tests run in parallel; the teardown test counts process-wide resources (fds, zombies) and
/// needs the process to itself. Container tests hold the gate shared, that test holds it
/// exclusively. Waiters are served in arrival order, so an exclusive waiter is not starved.
public actor TestGate {
    public static let shared = TestGate()

    private var readers = 0
    private var writer = false
    private var queue: [(exclusive: Bool, continuation: CheckedContinuation<Void, Never>)] = []

    func acquire(exclusive: Bool) async {
        if queue.isEmpty && !writer && (!exclusive || readers == 0) {
            if exclusive { writer = true } else { readers += 1 }
            return
        }
        await withCheckedContinuation { queue.append((exclusive, $0)) }
    }

    func release(exclusive: Bool) {
        if exclusive { writer = false } else { readers -= 1 }
        while let next = queue.first, !writer, !next.exclusive || readers == 0 {
            queue.removeFirst()
            if next.exclusive { writer = true } else { readers += 1 }
            next.continuation.resume()
            if next.exclusive { break }
        }
    }
}

public func withSharedGate<T>(_ body: () async throws -> T) async throws -> T {
    try await withGate(exclusive: false, body)
}

public func withExclusiveGate<T>(_ body: () async throws -> T) async throws -> T {
    try await withGate(exclusive: true, body)
}

private func withGate<T>(exclusive: Bool, _ body: () async throws -> T) async throws -> T {
    await TestGate.shared.acquire(exclusive: exclusive)
    do {
        let r = try await body()
        await TestGate.shared.release(exclusive: exclusive)
        return r
    } catch {
        await TestGate.shared.release(exclusive: exclusive)
        throw error
    }
}
