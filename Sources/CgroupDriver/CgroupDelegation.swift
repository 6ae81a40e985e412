import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A runner started by a service manager that delegated its cgroup to it (systemd's
/// `Delegate=yes`) keeps every cgroup it makes inside that one, as systemd's delegation
/// contract asks, instead of at the top of each hierarchy.
///
/// On cgroup v2 a cgroup with processes of its own cannot hand controllers to its children, so
/// the runner first moves itself into a leaf (`<own>/runner`), then enables memory, cpu and
/// pids in `<own>/cgroup.subtree_control`; its containers go under `<own>/<root name>/`. On
/// hybrid and v1 hosts the same layout is used in every hierarchy (systemd gives a delegated
/// unit the same path in each), which makes the move harmless there.
public enum CgroupDelegation {
    /// The leaf the runner's own process moves into.
    public static let runnerLeaf = "runner"

    /// The runner's own cgroup (relative to each hierarchy's root) from /proc/self/cgroup's
    /// text: the same path in every hierarchy the runner uses, or an error naming them.
    public static func ownPath(procSelfCgroup text: String, layout: CgroupLayout) throws(RunnerError) -> String {
        var paths: [String: String] = [:]
        let wanted = Set(layout.v1Controllers)
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty && layout.v2Mount != nil { paths["unified"] = path }
            for controller in parts[1].split(separator: ",").map(String.init) where wanted.contains(controller) {
                paths[controller] = path
            }
        }
        var needed = layout.v1Controllers
        if layout.v2Mount != nil { needed.append("unified") }
        let missing = needed.filter { paths[$0] == nil }
        if !missing.isEmpty {
            throw RunnerError(
                .unsupported, "/proc/self/cgroup names no cgroup of this process for \(missing.joined(separator: ", "))",
                step: "find own cgroup")
        }
        let distinct = Set(needed.map { paths[$0]! })
        guard distinct.count == 1, let own = distinct.first else {
            let listing = needed.map { "\($0) \(paths[$0]!)" }.joined(separator: ", ")
            throw RunnerError(
                .unsupported,
                "--cgroup-delegated needs the runner in one cgroup path in every hierarchy (as systemd's Delegate=yes gives it); it is in \(listing)",
                step: "find own cgroup")
        }
        let relative = own.split(separator: "/").joined(separator: "/")
        if relative.isEmpty {
            throw RunnerError(
                .invalidArgument,
                "--cgroup-delegated needs a cgroup of the runner's own (a systemd unit with Delegate=yes); this process is in the root cgroup",
                step: "find own cgroup")
        }
        return relative
    }

    /// Moves this process into `<own>/runner` in every hierarchy, lets `<own>` hand memory, cpu
    /// and pids down on cgroup v2, and returns the cgroup root to use: `<own>/<rootName>`.
    public static func enter(
        layout: CgroupLayout, rootName: String, procSelfCgroup: String? = nil, pid: Int32 = getpid()
    ) throws(RunnerError) -> String {
        let text: String
        if let procSelfCgroup { text = procSelfCgroup } else { text = try FileSystem.read("/proc/self/cgroup") }
        let own = try ownPath(procSelfCgroup: text, layout: layout)
        var mounts = layout.v1Controllers.map { layout.v1Mounts[$0]! }
        if let v2 = layout.v2Mount { mounts.append(v2) }
        for mount in Set(mounts).sorted() {
            let leaf = "\(mount)/\(own)/\(runnerLeaf)"
            try FileSystem.makeDirectory(leaf)
            try FileSystem.write(leaf + "/cgroup.procs", "\(pid)")
        }
        if layout.kind == .unified, let v2 = layout.v2Mount {
            let control = "\(v2)/\(own)/cgroup.subtree_control"
            let enabled = Set(try FileSystem.read(control).trimmed.split(separator: " ").map(String.init))
            let wanted = CgroupDriver.v2Controllers.filter { !enabled.contains($0) }
            if !wanted.isEmpty {
                do {
                    try FileSystem.write(control, wanted.map { "+" + $0 }.joined(separator: " "))
                } catch {
                    throw RunnerError(
                        .unsupported,
                        "cannot enable \(wanted.joined(separator: ", ")) in \(control) (is another process still in \(own)?): \(error.message)",
                        step: "delegate controllers", errno: error.errno)
                }
            }
        }
        return own + "/" + rootName
    }
}
