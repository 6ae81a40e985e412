import CRunnerShim
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A launcher joins its v1 cgroups itself before it parks; one that cannot is gone before it
/// parks, and says which step failed (a start then fails, instead of running outside them).
@Suite(.enabled(if: Host.canRunContainers, "needs root"))
struct ParkedLauncherJoinTests {
    @Test func aLauncherThatCannotJoinItsCgroupEndsBeforeItParksAndNamesTheStep() throws {
        // Not a cgroup's tasks file, and not open for writing: the join's write fails.
        let notTasks = open("/dev/null", O_RDONLY | O_CLOEXEC)
        try #require(notTasks >= 0)
        defer { close(notTasks) }
        var fds = [notTasks]
        var launcher: OpaquePointer?
        var stage: Int32 = 0
        let rc = rn_launcher_start(0, -1, &fds, fds.count, &launcher, &stage)
        #expect(rc == -EBADF)
        #expect(stage == Int32(RN_STAGE_JOIN_CGROUP.rawValue))
        #expect(launcher == nil, "nothing is left to dismiss or free")
    }

    @Test func aLauncherWithNoCgroupToJoinParksAndCanBeDismissed() throws {
        var launcher: OpaquePointer?
        var stage: Int32 = 0
        let rc = rn_launcher_start(0, -1, nil, 0, &launcher, &stage)
        try #require(rc == 0)
        let l = try #require(launcher)
        let pid = rn_launcher_pid(l)
        #expect(Host.isRunning(pid))
        #expect(rn_launcher_dismiss(l) == 0)
        var code: Int32 = 0
        var kind: Int32 = 0
        _ = rn_pidfd_wait(rn_launcher_pidfd(l), 0, &code, &kind)
        close(rn_launcher_pidfd(l))
        rn_launcher_free(l)
        #expect(!Host.isRunning(pid))
    }
}
