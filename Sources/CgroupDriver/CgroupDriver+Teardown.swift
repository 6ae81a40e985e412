import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CgroupDriver {
    /// Kills every process in the cgroup and waits until it is empty.
    ///
    /// Uses cgroup.kill where the kernel has it (5.14+, also in the v2 tree of hybrid hosts), which
    /// also reaches frozen tasks; otherwise thaws a v1 freezer group and SIGKILLs every listed pid
    /// until none is left.
    public func kill(_ cg: CgroupSet, timeoutMillis: Int = 5000) throws(RunnerError) {
        var killedByKernel = false
        if let v2 = cg.v2Path, FileSystem.exists(v2 + "/cgroup.kill") {
            do {
                try FileSystem.write(v2 + "/cgroup.kill", "1")
                killedByKernel = true
            } catch where error.errno == ENOENT {
                return
            }
        } else if let freezer = cg.v1Paths["freezer"], FileSystem.exists(freezer) {
            try? FileSystem.write(freezer + "/freezer.state", "THAWED")
        }
        let deadline = MonotonicClock.nowNanos() + UInt64(timeoutMillis) * 1_000_000
        var delay: UInt32 = 50
        while true {
            let remaining = try livePids(cg)
            if remaining.isEmpty { return }
            // After cgroup.kill the kernel finishes the job: only wait. Signalling pids read from
            // cgroup.procs could hit a reused pid once its process has been reaped.
            if !killedByKernel { for pid in remaining { Glibc.kill(pid, SIGKILL) } }
            if MonotonicClock.nowNanos() > deadline {
                throw RunnerError(
                    .timeout, "processes \(remaining) in cgroup \(cg) did not die within \(timeoutMillis) ms",
                    step: "kill cgroup")
            }
            usleep(delay)
            delay = min(delay * 2, 10_000)
        }
    }

    /// The pids still in the cgroup, from every hierarchy (a v1 hierarchy may lag behind v2).
    public func livePids(_ cg: CgroupSet) throws(RunnerError) -> [Int32] {
        var pids = Set<Int32>()
        for path in cg.allPaths {
            do {
                pids.formUnion(CgroupFileFormat.pids(try FileSystem.read(path + "/cgroup.procs")))
            } catch where error.errno == ENOENT {
                continue
            }
        }
        return pids.sorted()
    }

    /// Removes the cgroup from every hierarchy, retrying while the kernel finishes tearing down
    /// exited tasks (rmdir answers EBUSY until then). Missing directories are fine.
    public func delete(_ cg: CgroupSet, timeoutMillis: Int = 5000) throws(RunnerError) {
        let deadline = MonotonicClock.nowNanos() + UInt64(timeoutMillis) * 1_000_000
        for path in cg.allPaths.reversed() {
            var delay: UInt32 = 50
            while rmdir(path) != 0 {
                let err = errno
                if err == ENOENT { break }
                if err != EBUSY || MonotonicClock.nowNanos() > deadline {
                    throw .system("rmdir", errno: err, "cannot remove cgroup \(path)")
                }
                usleep(delay)
                delay = min(delay * 2, 10_000)
            }
        }
    }

    /// Instance directories under the runner's root, in any hierarchy.
    public func instances() throws(RunnerError) -> [String] {
        var names = Set<String>()
        for path in rootSet.allPaths where FileSystem.isDirectory(path) {
            names.formUnion(try FileSystem.subdirectories(path))
        }
        return names.sorted()
    }

    /// Container directories of an instance, in any hierarchy.
    public func containers(ofInstance instance: String) throws(RunnerError) -> [String] {
        var names = Set<String>()
        for path in instanceSet(instance).allPaths where FileSystem.isDirectory(path) {
            names.formUnion(try FileSystem.subdirectories(path))
        }
        return names.sorted()
    }

    /// Kills and removes every container of an instance, then the instance level itself.
    /// Returns the containers removed.
    @discardableResult
    public func removeInstance(_ instance: String) throws(RunnerError) -> [String] {
        let names = try containers(ofInstance: instance)
        for name in names {
            let cg = containerSet(instance: instance, container: name)
            try kill(cg)
            try delete(cg)
        }
        try delete(instanceSet(instance))
        return names
    }

    /// Removes the root directory if nothing else uses it (another runner's instance keeps it
    /// busy, which is fine). Ancestors of a multi-level root are not the runner's and stay.
    public func removeRootIfEmpty() {
        for path in rootSet.allPaths.reversed() { rmdir(path) }
    }
}
