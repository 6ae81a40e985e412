import CgroupDriver
import RunnerOS
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A temp directory laid out like a cgroup host, with the interface files a kernel would create,
/// so the v2 and v1 file formats can be checked without privileges.
final class FakeCgroupRoot {
    let dir: String

    init() throws {
        dir = "/tmp/fnrunner-fake-cgroup-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(dir)
    }

    deinit { try? FileSystem.removeTree(dir) }

    var v2Layout: CgroupLayout { CgroupLayout(v2Mount: dir, v1Mounts: [:]) }

    var hybridLayout: CgroupLayout {
        CgroupLayout(
            v2Mount: dir + "/unified",
            v1Mounts: ["memory": dir + "/memory", "cpu": dir + "/cpu", "cpuacct": dir + "/cpuacct", "pids": dir + "/pids",
                       "freezer": dir + "/freezer"])
    }

    var legacyLayout: CgroupLayout {
        CgroupLayout(
            v2Mount: nil,
            v1Mounts: ["memory": dir + "/memory", "cpu": dir + "/cpu,cpuacct", "cpuacct": dir + "/cpu,cpuacct",
                       "pids": dir + "/pids", "freezer": dir + "/freezer"])
    }

    /// Writes a file, creating its directory.
    func put(_ relative: String, _ contents: String) throws {
        let path = dir + "/" + relative
        try FileSystem.makeDirectories(String(path[..<path.lastIndex(of: "/")!]))
        try FileSystem.create(path, contents: contents)
    }

    func get(_ relative: String) throws -> String { try FileSystem.read(dir + "/" + relative) }

    /// The files a v2 kernel puts in every non-root cgroup.
    func makeV2Group(_ relative: String, controllers: String = "cpu memory pids") throws {
        for (file, value) in [
            ("cgroup.controllers", controllers), ("cgroup.subtree_control", ""), ("memory.max", "max"),
            ("memory.swap.max", "max"), ("pids.max", "max"), ("cpu.max", "max 100000"), ("cgroup.procs", ""),
        ] {
            try put(relative + "/" + file, value)
        }
    }

    func makeV1Group(_ controllerDir: String, _ relative: String, files: [String]) throws {
        for f in files { try put("\(controllerDir)/\(relative)/\(f)", "") }
        try put("\(controllerDir)/\(relative)/cgroup.procs", "")
    }
}
