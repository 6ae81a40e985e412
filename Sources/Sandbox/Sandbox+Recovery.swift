import CRunnerShim
import CgroupDriver
import Logging
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Sandbox {
    /// Finds instances whose runner is gone (their lock is free) and removes all they left:
    /// containers' processes (thawed and killed), cgroups, mounts and state directories.
    ///
    /// Only instances that have a lock file in this state directory are touched; a cgroup
    /// instance without one belongs to a runner using another state directory and is left alone.
    static func recover(driver: CgroupDriver, paths: StatePaths, ownInstance: String, logger: Logger)
        throws(RunnerError) -> RecoveryReport
    {
        var report = RecoveryReport()
        let withState = Set(try FileSystem.subdirectories(paths.instances))
        let inCgroups = Set(try driver.instances())
        for instance in withState.union(inCgroups).sorted() where instance != ownInstance {
            guard withState.contains(instance) else {
                report.foreign.append(instance)
                continue
            }
            // A runner starting right now has made its directory but not yet its lock: leave
            // lock-less directories alone while they are young. The lock is looked for first:
            // it appears already locked, so once it is there, its flock tells. (Testing the flock
            // first raced with a start: no lock yet, then a lock by the time of the age check,
            // and a live runner's directory was removed under it.)
            if !FileSystem.exists(paths.lock(instance)) {
                if isYoung(paths.instance(instance)) { continue }
            } else if try isLive(paths.lock(instance)) {
                continue
            }
            let containers = try driver.removeInstance(instance)
            report.instances[instance] = containers
            for mount in try mounts(under: paths.instance(instance)) {
                let rc = rn_detach_mount(mount)
                if rc < 0 && rc != -EINVAL && rc != -ENOENT {
                    throw .system("umount2", errno: -rc, "cannot detach leftover mount \(mount)")
                }
                report.mounts.append(mount)
            }
            try FileSystem.removeTree(paths.instance(instance))
        }
        if !report.isEmpty {
            logger.notice(
                "reclaimed what crashed runners left",
                metadata: [
                    "instances": "\(report.instances.keys.sorted())", "containers": "\(report.containerCount)",
                    "mounts": "\(report.mounts.count)",
                ])
        }
        if !report.foreign.isEmpty {
            logger.warning(
                "cgroup instances without a lock in this state directory were left alone",
                metadata: ["instances": "\(report.foreign)", "cgroup.root": "\(driver.rootName)"])
        }
        return report
    }

    /// An instance is live while some process holds the flock on its lock file.
    static func isLive(_ lockPath: String) throws(RunnerError) -> Bool {
        let fd = open(lockPath, O_RDWR | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return false }
            throw .system("open", errno: errno, "cannot open instance lock \(lockPath)")
        }
        defer { close(fd) }  // closing drops the lock if we took it
        let rc = rn_try_lock(fd)
        if rc == 0 { return false }
        if rc == -EWOULDBLOCK { return true }
        throw .system("flock", errno: -rc, "cannot test instance lock \(lockPath)")
    }

    static func isYoung(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return time(nil) - st.st_mtim.tv_sec < 60
    }

    /// Mount points at or below `dir`, deepest first.
    static func mounts(under dir: String) throws(RunnerError) -> [String] {
        try MountInfo.current().map(\.mountPoint)
            .filter { $0 == dir || $0.hasPrefix(dir + "/") }
            .sorted { $0.count > $1.count }
    }
}
