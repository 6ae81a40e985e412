/// Waits for `wait` for at most `timeout`. `wait` must return nil when cancelled; a value it
/// produced anyway after the timeout won (a token granted at that very moment) goes to
/// `discard`, so nothing taken on the caller's behalf leaks.
func raceWithTimeout<T: Sendable>(
    _ timeout: Duration, _ wait: @escaping @Sendable () async -> T?, discard: @escaping @Sendable (T) -> Void
) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await wait() }
        group.addTask {
            try? await Task.sleep(for: timeout)
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
