/// Counts of calls and containers per state in one slot queue; they decide when to launch.
public struct SlotQueueStats: Sendable, Equatable {
    public enum RequestState: Int, Sendable, CaseIterable { case none, wait, exec, done }
    public enum ContainerState: Int, Sendable, CaseIterable { case none, wait, start, idle, paused, busy, done }

    /// Counts by raw value; `none` and `done` are never counted. Fixed arrays, not dictionaries:
    /// a hot container moves twice per call, under its queue's lock.
    private var requests = [Int](repeating: 0, count: RequestState.allCases.count)
    private var containers = [Int](repeating: 0, count: ContainerState.allCases.count)

    public init() {}

    public func count(_ s: RequestState) -> Int { requests[s.rawValue] }
    public func count(_ s: ContainerState) -> Int { containers[s.rawValue] }

    /// Forward moves only; anything else is a bug in the caller and is ignored.
    mutating func move(request from: RequestState, to: RequestState) {
        guard to.rawValue > from.rawValue else { return }
        if from != .none && from != .done { requests[from.rawValue] -= 1 }
        if to != .none && to != .done { requests[to.rawValue] += 1 }
    }

    /// Forward moves, plus the backward ones a hot container makes between calls:
    /// busy → idle or paused, paused → idle.
    mutating func move(container from: ContainerState, to: ContainerState) {
        let backward =
            switch (from, to) {
            case (.busy, .idle), (.busy, .paused), (.paused, .idle): true
            default: false
            }
        guard to.rawValue > from.rawValue || backward else { return }
        if from != .none && from != .done { containers[from.rawValue] -= 1 }
        if to != .none && to != .done { containers[to.rawValue] += 1 }
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
        requests.allSatisfy { $0 == 0 } && containers.allSatisfy { $0 == 0 }
    }

    /// For tests: counts set directly.
    public static func with(waiting: Int = 0, idle: Int = 0, paused: Int = 0, starting: Int = 0, waitingForResources: Int = 0)
        -> SlotQueueStats
    {
        var s = SlotQueueStats()
        s.requests[RequestState.wait.rawValue] = waiting
        s.containers[ContainerState.idle.rawValue] = idle
        s.containers[ContainerState.paused.rawValue] = paused
        s.containers[ContainerState.start.rawValue] = starting
        s.containers[ContainerState.wait.rawValue] = waitingForResources
        return s
    }
}
