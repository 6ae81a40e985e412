import Synchronization

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

    private enum State {
        /// In line, nobody waiting on it right now.
        case queued
        /// In line, with a wait suspended on it.
        case waiting(CheckedContinuation<ResourceToken?, Never>)
        /// Granted, not taken yet.
        case granted(ResourceToken)
        /// The token was taken (or handed to a wait), or the place left: nothing more comes.
        case closed
    }
    private let state = Mutex(State.queued)

    init(tracker: ResourceTracker, memoryBytes: UInt64, cpuMillicores: UInt64) {
        self.tracker = tracker
        self.memoryBytes = memoryBytes
        self.cpuMillicores = cpuMillicores
    }

    /// The token, if it has been granted; the place is closed once it is taken.
    public func take() -> ResourceToken? {
        state.withLock { s -> ResourceToken? in
            guard case .granted(let token) = s else { return nil }
            s = .closed
            return token
        }
    }

    /// Waits up to `timeout` (nil: no limit) for the token. nil when the time passes or the task
    /// is cancelled; the place in line is kept either way. One wait at a time: the place has one
    /// holder.
    public func wait(timeout: Duration?, clock: any AgentClock = SystemClock()) async -> ResourceToken? {
        if let token = take() { return token }
        guard let timeout else { return await wait() }
        return await raceWithTimeout(timeout, clock: clock, { await self.wait() })
    }

    /// Leaves the line. A token granted and not taken goes back to the tracker.
    public func leave() {
        tracker.remove(self)
        let (token, waiter) = state.withLock { s -> (ResourceToken?, CheckedContinuation<ResourceToken?, Never>?) in
            defer { s = .closed }
            switch s {
            case .granted(let token): return (token, nil)
            case .waiting(let c): return (nil, c)
            case .queued, .closed: return (nil, nil)
            }
        }
        token?.release()
        waiter?.resume(returning: nil)
    }

    /// Called by the tracker, outside its lock, for a request it removed from the line.
    func grant(_ token: ResourceToken) {
        let (waiter, unwanted) = state.withLock { s -> (CheckedContinuation<ResourceToken?, Never>?, Bool) in
            switch s {
            case .waiting(let c):
                s = .closed
                return (c, false)
            case .queued:
                s = .granted(token)
                return (nil, false)
            case .granted, .closed:
                return (nil, true)
            }
        }
        if unwanted { token.release() }  // the place was left as the grant came
        waiter?.resume(returning: token)
    }

    private func wait() async -> ResourceToken? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<ResourceToken?, Never>) in
                let ready = state.withLock { s -> ResourceToken?? in
                    switch s {
                    case .granted(let token):
                        s = .closed
                        return .some(token)
                    case .waiting:
                        assertionFailure("a second wait on one place in line")
                        return .some(nil)
                    case .closed:
                        return .some(nil)
                    case .queued:
                        s = .waiting(c)
                        return .none
                    }
                }
                if let ready { c.resume(returning: ready) }
                if Task.isCancelled { stopWaiting() }
            }
        } onCancel: {
            stopWaiting()
        }
    }

    /// Ends the current wait with nil; the place in line stays.
    private func stopWaiting() {
        let waiter = state.withLock { s -> CheckedContinuation<ResourceToken?, Never>? in
            guard case .waiting(let c) = s else { return nil }
            s = .queued
            return c
        }
        waiter?.resume(returning: nil)
    }
}
