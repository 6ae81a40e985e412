import CRunnerShim
import CgroupDriver
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A launcher process parked in a pooled sandbox (see rn_launcher.h): it clones one
/// container, which inherits its cgroups and network namespace, and then exits.
///
/// Why a process and not just pre-made cgroups: a network namespace (and, on the bridge, its
/// veth) belongs to a process; one made ahead off the call path is given to the container at
/// clone time, and the cgroups with it.
final class ParkedLauncher: @unchecked Sendable {
    // @unchecked: the handle is used by one owner at a time (the pool hands an entry out once).
    private let handle: OpaquePointer
    let pid: Int32
    let pidfd: Int32
    /// The step of the error a start gets when the launcher was gone (killed while parked):
    /// the start then goes direct.
    static let goneStep = "parked launcher"
    /// Called once the launcher has been reaped and its memory freed.
    private let onFreed: @Sendable () -> Void

    /// Makes a launcher in `cgroup` and waits until it is parked; with `network`, in a network
    /// namespace of its own with loopback up. It enters its cgroups as a directly cloned
    /// container does (`CgroupEntry`).
    init(network: Bool, cgroup: CgroupSet, driver: CgroupDriver, onFreed: @escaping @Sendable () -> Void) throws(RunnerError) {
        let entry = try CgroupEntry(cgroup, driver: driver)
        defer { entry.closeAll() }
        var raw: OpaquePointer?
        var stage: Int32 = 0
        let rc = entry.v1TaskFiles.withUnsafeBufferPointer { fds in
            rn_launcher_start(network ? 1 : 0, entry.v2Directory, fds.baseAddress, fds.count, &raw, &stage)
        }
        guard rc == 0, let raw else {
            let ended = rc == -ECHILD && stage == Int32(RN_STAGE_CLONE.rawValue)
            let step = ended ? "launcher ended before it parked" : String(cString: rn_stage_name(stage))
            throw .system(step, errno: -rc, "cannot make a parked launcher (of the sandbox pool, or of a bridge start)")
        }
        handle = raw
        self.onFreed = onFreed
        pid = rn_launcher_pid(raw)
        pidfd = rn_launcher_pidfd(raw)
    }

    /// Has the launcher clone the container; returns rn_launcher_launch's code (-ECHILD: the
    /// launcher was gone, killed while parked, and nothing was started). Either way the
    /// launcher has ended, and is reaped in the background.
    func launch(_ spec: inout rn_spawn_spec, into spawned: inout rn_spawned) -> Int32 {
        let rc = rn_launcher_launch(handle, &spec, &spawned)
        reapInBackground()
        return rc
    }

    /// Ends a launcher that was never used: asks it to exit, reaps it, frees its memory.
    func dismiss() {
        _ = rn_launcher_dismiss(handle)
        waitForExit()
        release()
    }

    private func reapInBackground() {
        do {
            try ProcessReaper.shared.watch(pidfd: pidfd) { [self] _ in release() }
        } catch {
            // No reaper: wait here (the launcher exits right after answering).
            waitForExit()
            release()
        }
    }

    private func waitForExit() {
        var code: Int32 = 0
        var kind: Int32 = 0
        _ = rn_pidfd_wait(pidfd, 0, &code, &kind)
    }

    /// Once the launcher has been reaped: its pidfd and mapping go.
    private func release() {
        close(pidfd)
        rn_launcher_free(handle)
        onFreed()
    }
}
