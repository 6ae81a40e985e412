import CRunnerShim
import CgroupDriver
import Freezer
import Logging
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Sandbox {
    /// Makes a container of a process this runner did not clone: a zygote template's fork,
    /// which lives in the template's namespaces but must get cgroups (and limits) of its own
    /// before it serves a call.
    ///
    /// The descriptor came from a process that runs function code, so it is checked: the
    /// process it names must be in `template`'s cgroup (no process of another container, nor
    /// of the host) and must be neither `templatePID` (the template's init) nor a child of it
    /// (the template's own main process, which forks; its forks are its children). Once the
    /// process is attached, the pidfd must still name it (alive, same pid): a fork that ended
    /// in between could have had its pid reused. On success the container owns `pidfd`; on
    /// failure `pidfd` is closed, and only a process that passed every check is killed.
    public func adopt(
        pidfd: Int32, limits: ResourceLimits, from template: CgroupSet, templatePID: Int32, name: String? = nil
    ) throws(RunnerError) -> Container {
        let began = MonotonicClock.nowNanos()
        let containerName = name ?? nextName()
        let pid: Int32
        do throws(RunnerError) {
            pid = try ProcessDescriptor.pid(of: pidfd)
            guard pid != templatePID, try Self.cgroup(template, holds: pid), ProcessDescriptor.parent(of: pid) != templatePID else {
                throw RunnerError(
                    .containerStart, "the zygote named process \(pid), which is not one of its own forks", step: "adopt fork")
            }
        } catch {
            rn_close_untrusted(pidfd)
            throw error
        }
        var created: CgroupSet?
        do throws(RunnerError) {
            let cg = try driver.create(instance: instanceID, container: containerName, limits: limits)
            created = cg
            let setup = TimedPhase.ending("cgroup create", from: began)
            try driver.attach(pid: pid, to: cg)
            guard (try? ProcessDescriptor.pid(of: pidfd)) == pid else {
                // Whatever has that pid now is not the fork: it is left alone, and so is its
                // cgroup if it is in there.
                logger.error(
                    "a zygote fork ended while it was being adopted; its pid was not signalled",
                    metadata: ["pid": "\(pid)", "cgroup": "\(cg)"])
                created = nil
                if (try? Self.cgroup(cg, holds: pid)) != true { try? driver.delete(cg) }
                throw RunnerError(.containerStart, "the zygote's fork \(pid) ended while it was adopted", step: "adopt fork")
            }
            if limits.cpuMillicores != nil { try driver.applyCPU(cg, millicores: limits.cpuMillicores) }
            let container = Container(
                name: containerName, pid: pid, pidfd: pidfd, cgroup: cg, driver: driver, freezer: try? Freezer(cgroup: cg),
                sandbox: self, adopted: true, startPhases: [setup, .ending("cgroup attach", from: setup.end)])
            try register(container)
            do throws(RunnerError) {
                try ProcessReaper.shared.watch(pidfd: pidfd) { [container] exit in container.processExited(exit) }
            } catch {
                deregister(containerName)
                throw error
            }
            return container
        } catch {
            // The pidfd reaches only the fork (never a process that reused its pid).
            _ = rn_pidfd_signal(pidfd, SIGKILL)
            if let created {
                try? driver.kill(created)
                try? driver.delete(created)
            }
            close(pidfd)
            throw error
        }
    }

    /// Whether `pid` is a member of `cg` (read from its first hierarchy).
    static func cgroup(_ cg: CgroupSet, holds pid: Int32) throws(RunnerError) -> Bool {
        guard let path = cg.v1AttachPaths.first ?? cg.v2Path else { return false }
        let procs = try FileSystem.read(path + "/cgroup.procs")
        return procs.split(separator: "\n").contains { Int32($0) == pid }
    }
}
