import RunnerOS

/// Controller ("" for the v2 tree) → cgroup path, from /proc/<pid>/cgroup: where the kernel says
/// a process is, to compare with where the runner meant to put it.
public func cgroupMembership(_ pid: Int32) throws -> [String: String] {
    var places: [String: String] = [:]
    for line in try FileSystem.read("/proc/\(pid)/cgroup").split(separator: "\n") {
        let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { continue }
        if fields[1].isEmpty { places[""] = String(fields[2]) }
        for controller in fields[1].split(separator: ",") { places[String(controller)] = String(fields[2]) }
    }
    return places
}
