import CRunnerShim
import CgroupDriver
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a process the runner clones needs to enter its cgroups without a `cgroup.procs` write
/// (which waits for an RCU grace period, see `rn_spawn_spec.join_task_fds`): the v2 directory
/// for CLONE_INTO_CGROUP, and the v1 `tasks` files it writes "0" into itself. A container
/// cloned directly and a parked launcher enter the same way. The caller closes it (`closeAll()`,
/// in a `defer`) once the process has entered: a deinit could run before the clone.
struct CgroupEntry {
    /// -1 without a v2 tree.
    let v2Directory: Int32
    let v1TaskFiles: [Int32]

    init(_ cg: CgroupSet, driver: CgroupDriver) throws(RunnerError) {
        var directory: Int32 = -1
        if let v2 = cg.v2Path {
            directory = rn_open_directory(v2)
            if directory < 0 { throw .system("open", errno: -directory, "cannot open cgroup \(v2)") }
        }
        do {
            v1TaskFiles = try driver.openTaskFiles(cg)
        } catch {
            if directory >= 0 { close(directory) }
            throw error
        }
        v2Directory = directory
    }

    /// No entry: a container cloned by a launcher inherits the launcher's cgroups.
    init() {
        v2Directory = -1
        v1TaskFiles = []
    }

    func closeAll() {
        if v2Directory >= 0 { close(v2Directory) }
        for fd in v1TaskFiles { close(fd) }
    }
}
