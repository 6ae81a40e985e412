/// Waits for `wait` for at most `timeout` on `clock`. `wait` must return nil when cancelled; a
/// value it produced anyway after the timeout won (a token granted at that very moment) is
/// returned all the same, so nothing taken on the caller's behalf is lost.
package func raceWithTimeout<T: Sendable>(
    _ timeout: Duration, clock: any AgentClock = SystemClock(), _ wait: @escaping @Sendable () async -> T?
) async -> T? {
    let deadline = clock.nanos(after: timeout)
    return await withTaskGroup(of: T?.self) { group in
        group.addTask { await wait() }
        group.addTask {
            try? await clock.sleep(untilNanos: deadline)
            return nil
        }
        // The timer's child only ever gives nil: whichever ends first, the value is the wait's.
        var result = await group.next()!
        group.cancelAll()
        while let other = await group.next() { result = result ?? other }
        return result
    }
}
