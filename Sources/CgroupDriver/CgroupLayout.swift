import RunnerOS

/// Which cgroup hierarchies a host has, learned from /proc/self/mountinfo.
///
/// Production hosts are mostly pure v2; this project's machines are hybrid (v1 controllers plus a
/// v2 tree without controllers that still offers cgroup.freeze, cgroup.kill and cgroup.events);
/// old hosts are pure v1. One driver serves all three by knowing exactly where each file lives.
public struct CgroupLayout: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case unified = "cgroup v2"
        case hybrid = "hybrid (v1 controllers + v2 tree)"
        case legacy = "cgroup v1"
    }

    /// Mount point of the cgroup2 hierarchy, if there is one.
    public var v2Mount: String?
    /// Mount point of each v1 controller ("memory" -> "/sys/fs/cgroup/memory").
    public var v1Mounts: [String: String]

    public init(v2Mount: String?, v1Mounts: [String: String]) {
        self.v2Mount = v2Mount
        self.v1Mounts = v1Mounts
    }

    public var kind: Kind {
        if v1Mounts["memory"] == nil && v1Mounts["pids"] == nil && v1Mounts["cpu"] == nil { return .unified }
        return v2Mount == nil ? .legacy : .hybrid
    }

    /// The v1 controllers the runner uses on this layout: the limits live in v1 unless the host is
    /// pure v2; freeze, kill and CPU usage come from the v2 tree when one exists.
    public var v1Controllers: [String] {
        guard kind != .unified else { return [] }
        var names = ["memory", "cpu", "pids"]
        if v2Mount == nil { names += ["cpuacct", "freezer"] }
        return names.filter { v1Mounts[$0] != nil }
    }

    public var description: String {
        var parts = [kind.rawValue]
        if let v2Mount { parts.append("v2 at \(v2Mount)") }
        let v1 = v1Controllers.map { "\($0)=\(v1Mounts[$0]!)" }
        if !v1.isEmpty { parts.append("v1 " + v1.joined(separator: " ")) }
        return parts.joined(separator: ", ")
    }

    /// Detects the layout of the running host.
    public static func detect() throws(RunnerError) -> CgroupLayout {
        let layout = try detect(mountinfo: MountInfo.current())
        if layout.v2Mount == nil && layout.v1Mounts.isEmpty {
            throw RunnerError(.unsupported, "no cgroup filesystem is mounted", step: "detect cgroup layout")
        }
        return layout
    }

    /// Detects the layout from mountinfo entries (tests pass a fake host's).
    public static func detect(mountinfo: [MountInfoEntry]) -> CgroupLayout {
        var v2: String?
        var v1: [String: String] = [:]
        let known: Set<String> = ["memory", "cpu", "cpuacct", "pids", "freezer", "cpuset", "blkio", "devices"]
        for entry in mountinfo {
            if entry.fsType == "cgroup2" {
                // Prefer the shortest mount point if the tree is mounted more than once.
                if v2 == nil || entry.mountPoint.count < v2!.count { v2 = entry.mountPoint }
            } else if entry.fsType == "cgroup" {
                for option in entry.superOptions where known.contains(option) {
                    if v1[option] == nil { v1[option] = entry.mountPoint }
                }
            }
        }
        return CgroupLayout(v2Mount: v2, v1Mounts: v1)
    }
}
