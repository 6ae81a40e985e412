import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// fnrunner-init as PID 1: orphans are reaped, signals reach the command, statuses pass through.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct InitProcessTests {
    /// Three orphans (their parent subshell exits at once) end after 50 ms; the command itself
    /// is `sleep`, which never waits for anyone.
    static let orphans = ["/bin/sh", "-c", "(sleep 0.05 &); (sleep 0.05 &); (sleep 0.05 &); exec sleep 30"]

    /// The states ("S", "Z", ...) of the host processes whose parent is `pid`.
    static func childStates(of pid: Int32) -> [String] { children(of: pid).map(\.state) }

    static func children(of pid: Int32) -> [(pid: Int32, state: String)] {
        var states: [(pid: Int32, state: String)] = []
        for entry in (try? FileSystem.list("/proc")) ?? [] where Int32(entry) != nil {
            guard let status = try? FileSystem.read("/proc/\(entry)/status") else { continue }
            var parent: Int32?
            var state = ""
            for line in status.split(separator: "\n") {
                if line.hasPrefix("PPid:") { parent = Int32(line.dropFirst(5).trimmingPrefix(while: { $0 == "\t" || $0 == " " })) }
                if line.hasPrefix("State:") { state = String(line.dropFirst(6).trimmingPrefix(while: { $0 == "\t" || $0 == " " }).prefix(1)) }
            }
            if parent == pid { states.append((Int32(entry)!, state)) }
        }
        return states
    }

    @Test func orphansOfALongLivedCommandAreReapedAndLeaveNoZombies() async throws {
        try await withSandbox { sandbox, _ in
            let c = try sandbox.start(try await busyboxSpec(Self.orphans))
            // Once sh has exec'd sleep the orphans exist; zombies would still hold their pids.
            try await waitUntil {
                let left = Self.children(of: c.pid)
                guard left.count == 1, (try? FileSystem.read("/proc/\(left[0].pid)/comm")) == "sleep\n" else { return false }
                return try c.stats().pidsCurrent == 2
            }
            #expect(!Self.childStates(of: c.pid).contains("Z"))
            try c.kill()
            _ = await c.wait()
            try await c.close()
        }
    }

    @Test func withoutInitTheSameOrphansStayZombiesAndHoldPids() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(Self.orphans)
            spec.runsInit = false
            let c = try sandbox.start(spec)
            // The command is PID 1 and never waits: once ended, the orphans stay zombies.
            try await waitUntil { Self.childStates(of: c.pid) == ["Z", "Z", "Z"] }
            #expect(try c.stats().pidsCurrent == 4, "the command and three zombies")
            try c.kill()
            _ = await c.wait()
            try await c.close()
        }
    }

    @Test func theCommandsExitCodeIsTheContainersAndASignalBecomes128PlusIt() async throws {
        try await withSandbox { sandbox, _ in
            let exited = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/sh", "-c", "exit 7"]))
            #expect(exited.exit.process == .exited(7))
            let killed = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/sh", "-c", "kill -TERM $$"]))
            #expect(killed.exit.process == .exited(128 + SIGTERM))
        }
    }

    @Test func aSignalSentToTheContainerReachesTheCommand() async throws {
        try await withSandbox { sandbox, _ in
            let out = try OutputPipe()
            var spec = try await busyboxSpec(["/bin/sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.01; done"])
            spec.stdout = out.writeFD
            let c = try sandbox.start(spec)
            out.closeWriteEnd()
            try await waitUntil { out.drain().contains("ready") }
            try c.signal(SIGTERM)
            let exit = await c.wait()
            #expect(exit.process == .exited(3))
            #expect(await out.readToEnd(timeoutMillis: 5000).contains("got TERM"))
            try await c.close()
        }
    }

    @Test func aCommandMissingFromTheImageIsReportedAsBeforeThroughInit() async throws {
        try await withSandbox { sandbox, _ in
            let spec = try await busyboxSpec(["no-such-command"])
            let error = #expect(throws: RunnerError.self) { try sandbox.start(spec) }
            #expect(error?.code == .notFound, "\(String(describing: error))")
            #expect(error?.message.contains("no-such-command not found") == true, "\(String(describing: error))")
            #expect(error?.step == "execve")
        }
    }
}
