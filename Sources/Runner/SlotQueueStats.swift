/// Counts of calls and containers per state in one slot queue; they decide when to launch.
public struct SlotQueueStats: Sendable, Equatable {
    public enum RequestState: Int, Sendable, CaseIterable { case none, wait, exec, done }
    public enum ContainerState: Int, Sendable, CaseIterable { case none, wait, start, idle, paused, busy, done }

    public private(set) var requests: [RequestState: Int] = [:]
    public private(set) var containers: [ContainerState: Int] = [:]

    public init() {}

    public func count(_ s: RequestState) -> Int { requests[s] ?? 0 }
    public func count(_ s: ContainerState) -> Int { containers[s] ?? 0 }

    /// Forward moves only; anything else is a bug in the caller and is ignored.
    mutating func move(request from: RequestState, to: RequestState) {
        guard to.rawValue > from.rawValue else { return }
        if from != .none && from != .done { requests[from, default: 0] -= 1 }
        if to != .none && to != .done { requests[to, default: 0] += 1 }
    }

    /// Forward moves, plus the backward ones a hot container makes between calls:
    /// busy → idle or paused, paused → idle.
    mutating func move(container from: ContainerState, to: ContainerState) {
        let backward: Set<[ContainerState]> = [[.busy, .idle], [.busy, .paused], [.paused, .idle]]
        guard to.rawValue > from.rawValue || backward.contains([from, to]) else { return }
        if from != .none && from != .done { containers[from, default: 0] -= 1 }
        if to != .none && to != .done { containers[to, default: 0] += 1 }
    }

    /// Fn's rule: assume every idle (or paused) container takes one waiter; launch only if some
    /// waiters are left over and the containers already starting (or waiting for resources) do
    /// not cover them.
    public var isNewContainerNeeded: Bool {
        let idle = count(ContainerState.idle) + count(ContainerState.paused)
        let waiters = count(RequestState.wait)
        let starters = count(ContainerState.start) + count(ContainerState.wait)
        let effective = max(0, waiters - idle)
        return effective > 0 && !(starters > 0 && starters >= effective)
    }

    public var isIdle: Bool {
        requests.values.allSatisfy { $0 == 0 } && containers.values.allSatisfy { $0 == 0 }
    }

    /// For tests: counts set directly.
    public static func with(waiting: Int = 0, idle: Int = 0, paused: Int = 0, starting: Int = 0, waitingForResources: Int = 0)
        -> SlotQueueStats
    {
        var s = SlotQueueStats()
        s.requests[.wait] = waiting
        s.containers[.idle] = idle
        s.containers[.paused] = paused
        s.containers[.start] = starting
        s.containers[.wait] = waitingForResources
        return s
    }
}
