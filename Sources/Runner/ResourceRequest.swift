/// A place in the resource tracker's line, held from the moment it is taken until the token is
/// taken or the place is left.
///
/// A launcher takes its place before it evicts anything: room an eviction frees is then granted
/// in line order at the release itself, so nothing that asks later (another launch, an instance
/// kept ahead of demand) can take it in between and leave the launcher waiting out its whole wait
/// limit while idle containers could still have been evicted for it.
public final class ResourceRequest: Sendable {
    public let memoryBytes: UInt64
    public let cpuMillicores: UInt64
    private let tracker: ResourceTracker

    private let place = PlaceInLine<ResourceToken>()

    init(tracker: ResourceTracker, memoryBytes: UInt64, cpuMillicores: UInt64) {
        self.tracker = tracker
        self.memoryBytes = memoryBytes
        self.cpuMillicores = cpuMillicores
    }

    /// The token, if it has been granted; the place is closed once it is taken.
    public func take() -> ResourceToken? { place.take() }

    /// Waits up to `timeout` (nil: no limit) for the token. nil when the time passes or the task
    /// is cancelled; the place in line is kept either way. One wait at a time: the place has one
    /// holder.
    public func wait(timeout: Duration?, clock: any AgentClock = SystemClock()) async -> ResourceToken? {
        if let token = take() { return token }
        guard let timeout else { return await place.wait() }
        return await raceWithTimeout(timeout, clock: clock, { await self.place.wait() })
    }

    /// Leaves the line. A token granted and not taken goes back to the tracker.
    public func leave() {
        tracker.remove(self)
        place.close()?.release()
    }

    /// Called by the tracker, outside its lock, for a request it removed from the line.
    func grant(_ token: ResourceToken) {
        if !place.deliver(token) { token.release() }  // the place was left as the grant came
    }
}
