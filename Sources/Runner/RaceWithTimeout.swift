/// Waits for `wait` for at most `timeout` on `clock`. `wait` must return nil when cancelled; a
/// value it produced anyway after the timeout won (a token granted at that very moment) goes to
/// `discard`, so nothing taken on the caller's behalf leaks.
package func raceWithTimeout<T: Sendable>(
    _ timeout: Duration, clock: any AgentClock = SystemClock(), _ wait: @escaping @Sendable () async -> T?,
    discard: @escaping @Sendable (T) -> Void
) async -> T? {
    let deadline = clock.nanos(after: timeout)
    return await withTaskGroup(of: T?.self) { group in
        group.addTask { await wait() }
        group.addTask {
            try? await clock.sleep(untilNanos: deadline)
            return nil
        }
        let first = await group.next()!
        group.cancelAll()
        while let other = await group.next() {
            if let late = other {
                if first == nil { return late }
                discard(late)
            }
        }
        return first
    }
}
