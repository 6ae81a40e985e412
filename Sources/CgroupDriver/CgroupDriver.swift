import Logging
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Creates, limits, observes and removes the runner's cgroups on v2, hybrid and v1 hosts.
///
/// Every directory it makes lives under `<hierarchy>/<rootName>/<instance>/`; it never writes to a
/// cgroup it did not create. The instance level lets a restarted runner tell its own leftovers
/// (an instance whose runner died) from a live runner's containers.
public final class CgroupDriver: Sendable {
    public let layout: CgroupLayout
    /// Relative path of the runner's root in every hierarchy ("fnrunner").
    public let rootName: String
    let logger: Logger

    /// Controllers a pure v2 host must delegate to the runner's root.
    static let v2Controllers = ["memory", "cpu", "pids"]

    public init(layout: CgroupLayout, rootName: String = "fnrunner", logger: Logger = Logger(label: "fnrunner.cgroup"))
        throws(RunnerError)
    {
        try Self.validateName(rootName, what: "cgroup root", allowSlash: true)
        self.layout = layout
        self.rootName = rootName
        self.logger = logger
    }

    static func validateName(_ name: String, what: String, allowSlash: Bool = false) throws(RunnerError) {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        let bad =
            name.isEmpty || name.hasPrefix("/") || name.hasSuffix("/")
            || parts.contains { $0.isEmpty || $0 == "." || $0 == ".." }
            || (!allowSlash && parts.count > 1)
            // As bytes: a CR LF pair is one Character, equal to neither.
            || name.utf8.contains { $0 == 10 || $0 == 13 || $0 == 0 }
        if bad {
            throw RunnerError(
                .invalidArgument,
                "invalid \(what) \"\(name)\": use a relative name without '.', '..' or empty components",
                step: "validate name")
        }
    }

    /// The runner's root directory in every hierarchy.
    public var rootSet: CgroupSet { cgroupSet(relative: rootName) }

    func cgroupSet(relative: String) -> CgroupSet {
        var v1: [String: String] = [:]
        for controller in layout.v1Controllers { v1[controller] = layout.v1Mounts[controller]! + "/" + relative }
        return CgroupSet(relativePath: relative, v2Path: layout.v2Mount.map { $0 + "/" + relative }, v1Paths: v1)
    }

    /// The set for a container of an instance (whether or not it exists).
    public func containerSet(instance: String, container: String) -> CgroupSet {
        cgroupSet(relative: "\(rootName)/\(instance)/\(container)")
    }

    public func instanceSet(_ instance: String) -> CgroupSet { cgroupSet(relative: "\(rootName)/\(instance)") }

    /// Creates the root and the instance level in every hierarchy and, on pure v2, delegates the
    /// memory, cpu and pids controllers down to the containers.
    ///
    /// A multi-level root ("machine.slice/fnrunner") must have its ancestors already: they are
    /// not the runner's, so it neither creates nor writes to them.
    public func prepareInstance(_ instance: String) throws(RunnerError) {
        try Self.validateName(instance, what: "instance name")
        if let slash = rootName.lastIndex(of: "/") {
            let parent = cgroupSet(relative: String(rootName[..<slash]))
            for path in parent.allPaths where !FileSystem.isDirectory(path) {
                throw RunnerError(
                    .notFound, "the parent of --cgroup-root \(rootName) does not exist: \(path)", step: "prepare cgroups")
            }
        }
        try makeLevel(rootSet)
        try makeLevel(instanceSet(instance))
    }

    private func makeLevel(_ level: CgroupSet) throws(RunnerError) {
        for path in level.allPaths { try FileSystem.makeDirectory(path) }
        if layout.kind == .unified, let v2 = level.v2Path { try delegateControllers(to: v2) }
    }

    /// Writes "+memory +cpu +pids" into our own cgroup.subtree_control, after checking that the
    /// parent offers them (we never write into a parent we did not create).
    private func delegateControllers(to path: String) throws(RunnerError) {
        let available = Set(try FileSystem.read(path + "/cgroup.controllers").trimmed.split(separator: " ").map(String.init))
        let missing = Self.v2Controllers.filter { !available.contains($0) }
        if !missing.isEmpty {
            let parent = String(path[..<path.lastIndex(of: "/")!])
            throw RunnerError(
                .unsupported,
                "cgroup controllers \(missing.joined(separator: ", ")) are not delegated to \(path): enable them in \(parent)/cgroup.subtree_control or choose a --cgroup-root whose parent has them",
                step: "delegate controllers")
        }
        let enabled = try FileSystem.read(path + "/cgroup.subtree_control").trimmed.split(separator: " ").map(String.init)
        let toEnable = Self.v2Controllers.filter { !enabled.contains($0) }
        if !toEnable.isEmpty {
            try FileSystem.write(path + "/cgroup.subtree_control", toEnable.map { "+" + $0 }.joined(separator: " "))
        }
    }

    /// Creates a container's cgroup in every hierarchy and applies memory and pids limits.
    /// CPU is applied separately (`applyCPU`), after setup, so the quota does not throttle it.
    public func create(instance: String, container: String, limits: ResourceLimits) throws(RunnerError) -> CgroupSet {
        try Self.validateName(container, what: "container name")
        let cg = containerSet(instance: instance, container: container)
        var created: [String] = []
        do {
            for path in cg.allPaths {
                if try FileSystem.makeDirectory(path) { created.append(path) }
            }
            try applyMemoryAndPids(cg, limits)
        } catch {
            for path in created.reversed() { rmdir(path) }
            throw error
        }
        return cg
    }

    /// Places another process, `pid`, in every hierarchy: for processes the runner adopts (a
    /// zygote's fork), which it did not clone itself.
    ///
    /// - Important: this write waits for an RCU grace period after a quiet moment (see
    ///   `rn_spawn_spec.join_task_fds`). Starts and launchers avoid it: CLONE_INTO_CGROUP for
    ///   v2, and for v1 a process that joins by itself (`openTaskFiles`).
    public func attach(pid: Int32, to cg: CgroupSet) throws(RunnerError) {
        for path in cg.v1AttachPaths { try FileSystem.write(path + "/cgroup.procs", String(pid)) }
        if let v2 = cg.v2Path { try FileSystem.write(v2 + "/cgroup.procs", String(pid)) }
    }

    /// The v1 hierarchies' `tasks` files of `cg`, open for writing (close-on-exec), for a new
    /// single-threaded child to write "0" into: a thread that moves itself is spared the global
    /// lock whose write side waits for an RCU grace period, so the move takes microseconds
    /// instead of `attach`'s milliseconds. Empty on a pure v2 host.
    public func openTaskFiles(_ cg: CgroupSet) throws(RunnerError) -> [Int32] {
        var fds: [Int32] = []
        for path in cg.v1AttachPaths {
            let fd = open(path + "/tasks", O_WRONLY | O_CLOEXEC)
            if fd < 0 {
                let e = errno
                for opened in fds { close(opened) }
                throw .system("open", errno: e, "cannot open \(path)/tasks")
            }
            fds.append(fd)
        }
        return fds
    }
}
