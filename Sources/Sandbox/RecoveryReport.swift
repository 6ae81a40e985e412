/// What a new runner reclaimed from runners that died without cleaning up.
public struct RecoveryReport: Sendable, Equatable {
    /// Dead instances and the containers (cgroups) each one left.
    public var instances: [String: [String]] = [:]
    /// Mounts detached under dead instances' state directories.
    public var mounts: [String] = []
    /// Cgroup instances with no lock in our state directory: another runner's (left alone).
    public var foreign: [String] = []

    public var containerCount: Int { instances.values.reduce(0) { $0 + $1.count } }
    public var isEmpty: Bool { instances.isEmpty && mounts.isEmpty }
}
