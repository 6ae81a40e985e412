import CgroupDriver
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `Sandbox.adopt`: a zygote's fork becomes a container of its own, and nothing else does.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroups"))
struct AdoptTests {
    /// The host pids in `cg` (read from its first hierarchy).
    static func members(_ cg: CgroupSet) throws -> [Int32] {
        let path = try #require(cg.v1AttachPaths.first ?? cg.v2Path)
        return try FileSystem.read(path + "/cgroup.procs").split(separator: "\n").compactMap { Int32($0) }
    }

    /// A container running a shell (init's child, as a template's Python is) with one child of
    /// its own, and that child's host pid.
    func template(_ sandbox: Sandbox) async throws -> (Container, Int32) {
        let template = try sandbox.start(try await busyboxSpec(["/bin/sh", "-c", "sleep 60 & wait"]))
        for _ in 0..<2000 {
            // init, the shell, and the sleep once it has been forked
            let others = try Self.members(template.cgroup).filter { $0 != template.pid }
            if others.count >= 2, let sleep = others.first(where: { (try? FileSystem.read("/proc/\($0)/comm")) == "sleep\n" }) {
                return (template, sleep)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("the template's child never appeared")
        throw RunnerError(.notFound, "no child", step: "test")
    }

    @Test func aProcessOfTheTemplatesCgroupBecomesAContainerWithCgroupsAndLimitsOfItsOwn() async throws {
        try await withSandbox { sandbox, _ in
            let (template, child) = try await template(sandbox)
            let adopted = try sandbox.adopt(
                pidfd: try ProcessDescriptor.open(pid: child), limits: ResourceLimits(memoryBytes: 64 << 20, pids: 8),
                from: template.cgroup, templatePID: template.pid)
            #expect(adopted.pid == child)
            #expect(adopted.cgroup != template.cgroup)
            #expect(try Self.members(adopted.cgroup) == [child])
            #expect(try !Self.members(template.cgroup).contains(child), "it left the template's cgroup")
            if let memory = adopted.cgroup.v1Paths["memory"] {
                #expect(try FileSystem.read(memory + "/memory.limit_in_bytes") == "\(64 << 20)\n")
            }
            #expect(sandbox.liveContainers.contains { $0 === adopted })
            try await adopted.close()
            #expect(adopted.exit != nil, "closing it killed and waited for the process")
            #expect(!FileSystem.exists(try #require(adopted.cgroup.allPaths.first)), "its cgroups are gone")
            try await template.close()
        }
    }

    @Test func closingAnAdoptedProcessThatExitedEndsWhatItLeftInItsCgroup() async throws {
        try await withSandbox { sandbox, _ in
            // A subshell that, once adopted, starts a child in its new cgroup and exits (an
            // adopted process is no init: its exit ends nothing else). The main shell lives on,
            // so the pid namespace (which would take the child with it) does too.
            let template = try sandbox.start(
                try await busyboxSpec(["/bin/sh", "-c", "(until [ -e /tmp/go ]; do sleep 0.02; done; sleep 60 & exit 0) & wait; sleep 120"]))
            // The subshell is the main shell's child (its own short-lived forks are its children).
            func shell(childOf parent: Int32) throws -> Int32? {
                try Self.members(template.cgroup).first {
                    ProcessDescriptor.parent(of: $0) == parent && (try? FileSystem.read("/proc/\($0)/comm")) == "sh\n"
                }
            }
            var subshell: Int32?
            for _ in 0..<2000 where subshell == nil {
                if let main = try shell(childOf: template.pid) { subshell = try shell(childOf: main) }
                if subshell == nil { try await Task.sleep(for: .milliseconds(5)) }
            }
            let pid = try #require(subshell, "the subshell appeared")
            let adopted = try sandbox.adopt(
                pidfd: try ProcessDescriptor.open(pid: pid), limits: ResourceLimits(pids: 8), from: template.cgroup,
                templatePID: template.pid)
            try FileSystem.create("/proc/\(pid)/root/tmp/go", contents: "")
            _ = await adopted.wait()
            let left = try Self.members(adopted.cgroup)
            #expect(left.count == 1, "the subshell's child is still in its cgroup: \(left)")
            try await adopted.close()
            #expect(left.allSatisfy { !Host.isRunning($0) })
            #expect(!FileSystem.exists(try #require(adopted.cgroup.allPaths.first)), "its cgroups are gone")
            try await template.close()
        }
    }

    @Test func aPidfdOfAProcessOutsideTheTemplateIsRefusedAndThatProcessLeftAlone() async throws {
        try await withSandbox { sandbox, _ in
            let (template, child) = try await template(sandbox)
            let outsider = try Subprocess(["/bin/sleep", "60"])
            defer { outsider.signal(SIGKILL) }  // reaped by its deinit
            let shell = try #require(try Self.members(template.cgroup).first { $0 != template.pid && $0 != child })
            for (pid, what) in [(outsider.pid, "a host process"), (template.pid, "the template's init"), (shell, "the template's main process")] {
                let before = sandbox.liveContainers.count
                #expect(throws: RunnerError.self, "\(what) is refused") {
                    try sandbox.adopt(
                        pidfd: try ProcessDescriptor.open(pid: pid), limits: ResourceLimits(), from: template.cgroup,
                        templatePID: template.pid)
                }
                #expect(kill(pid, 0) == 0, "\(what) was not signalled")
                #expect(sandbox.liveContainers.count == before)
            }
            #expect(template.exit == nil)
            try await template.close()
        }
    }

    @Test func aDescriptorThatIsNotAPidfdIsRefused() async throws {
        try await withSandbox { sandbox, _ in
            let (template, _) = try await template(sandbox)
            // A file of this test's own: once closed, its descriptor's number may be reused by
            // a test running beside this one, but never for this inode.
            let path = "/tmp/fnrunner-adopt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            defer { unlink(path) }
            var mine = stat()
            #expect(fstat(fd, &mine) == 0)
            let error = #expect(throws: RunnerError.self) {
                try sandbox.adopt(pidfd: fd, limits: ResourceLimits(), from: template.cgroup, templatePID: template.pid)
            }
            #expect(error?.message.contains("not a pidfd") == true, "\(String(describing: error))")
            var now = stat()
            let stillMine = fstat(fd, &now) == 0 && now.st_ino == mine.st_ino && now.st_dev == mine.st_dev
            #expect(!stillMine, "adopt closed the descriptor it was given")
            try await template.close()
        }
    }
}
