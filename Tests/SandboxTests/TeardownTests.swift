import RunnerOS
import Sandbox
import TestSupport
import Testing

@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"), .serialized)
struct TeardownTests {
    struct Footprint: Equatable {
        var fds: [String]
        var zombies: Int
        var cgroups: [String]
        var mounts: [String]
        var stateEntries: [String]

        /// Whether nothing here is beyond `other`: no descriptor more of a kind, no zombie more, and
        /// the same cgroups, mounts and state entries. The descriptors and zombies are the whole
        /// process's, so they also count what other suites' subprocesses hold for a moment.
        func isWithin(_ other: Footprint) -> Bool {
            var spare = Dictionary(other.fds.map { ($0, 1) }, uniquingKeysWith: +)
            for fd in fds {
                spare[fd, default: 0] -= 1
                if spare[fd, default: 0] < 0 { return false }
            }
            return zombies <= other.zombies && cgroups == other.cgroups && mounts == other.mounts
                && stateEntries == other.stateEntries
        }
    }

    func footprint(_ env: TestEnvironment, _ sandbox: Sandbox) async throws -> Footprint {
        let cgroups = await env.settledCgroupDirectories(sandbox).sorted()  // first: it waits for the pool
        return Footprint(
            fds: Host.containerFDs(), zombies: Host.zombieChildren(), cgroups: cgroups,
            mounts: Host.mounts(containing: env.stateDirectory) + Host.mounts(containing: "fnrunner"),
            stateEntries: try await Shell.output("find \(env.stateDirectory) | sort").split(separator: "\n").map(String.init))
    }

    /// Suites outside the gate (the CLI tests) start subprocesses while this suite runs, so either
    /// snapshot can hold a pidfd, pipe or zombie of theirs for a moment. A leak is what stays: this
    /// waits until nothing is left beyond the snapshot before, and fails with both if it never is.
    func expectNothingLeftBeyond(_ before: Footprint, _ env: TestEnvironment, _ sandbox: Sandbox) async throws {
        var after = try await footprint(env, sandbox)
        let deadline = ContinuousClock.now + .seconds(20)
        while !after.isWithin(before), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            after = try await footprint(env, sandbox)
        }
        #expect(after.isWithin(before), "left behind:\n  after: \(after)\n  before: \(before)")
    }

    @Test func fiveHundredContainersStartedAndClosedLeaveNothingBehind() async throws {
        try await withSandbox("500", exclusive: true) { sandbox, env in
            var spec = try await busyboxSpec(["/bin/true"])
            spec.limits = .init(memoryBytes: 64 << 20, cpuMillicores: 500, pids: 16)
            // One warm-up start so lazily created process-wide things (the reaper thread) exist.
            let warm = try sandbox.start(spec)
            _ = await warm.wait()
            try await warm.close()
            let before = try await footprint(env, sandbox)
            for i in 0..<500 {
                let c = try sandbox.start(spec)
                let exit = await c.wait()
                try await c.close()
                #expect(exit.process == .exited(0), "container \(i): \(exit)")
            }
            try await expectNothingLeftBeyond(before, env, sandbox)
            #expect(sandbox.liveContainers.isEmpty)
        }
    }

    @Test func aFootprintWithOneDescriptorOrZombieMoreIsNotWithinTheOneBefore() {
        let before = Footprint(fds: ["pipe", "pidfd"], zombies: 0, cgroups: ["/a"], mounts: [], stateEntries: ["/s"])
        #expect(Footprint(fds: ["pidfd"], zombies: 0, cgroups: ["/a"], mounts: [], stateEntries: ["/s"]).isWithin(before))
        #expect(!Footprint(fds: ["pipe", "pipe", "pidfd"], zombies: 0, cgroups: ["/a"], mounts: [], stateEntries: ["/s"]).isWithin(before))
        #expect(!Footprint(fds: ["pipe", "pidfd"], zombies: 1, cgroups: ["/a"], mounts: [], stateEntries: ["/s"]).isWithin(before))
        #expect(!Footprint(fds: ["pipe"], zombies: 0, cgroups: ["/a", "/a/b"], mounts: [], stateEntries: ["/s"]).isWithin(before))
    }

    @Test func failedStartsLeaveNothingBehind() async throws {
        try await withSandbox("fail", exclusive: true) { sandbox, env in
            let before = try await footprint(env, sandbox)
            for _ in 0..<50 {
                let missing = try await busyboxSpec(["/bin/missing"])
                #expect(throws: RunnerError.self) { _ = try sandbox.start(missing) }
                var bad = try await busyboxSpec(["/bin/true"])
                bad.workingDirectory = "/no/such/dir"
                #expect(throws: RunnerError.self) { _ = try sandbox.start(bad) }
            }
            try await expectNothingLeftBeyond(before, env, sandbox)
        }
    }

    @Test func shutdownClosesLiveAndFrozenContainersAndRemovesTheInstance() async throws {
        try await withSharedGate { try await shutdownScenario() }
    }

    func shutdownScenario() async throws {
        let env = TestEnvironment("shut")
        defer { env.cleanUp() }
        let sandbox = try Sandbox(configuration: env.configuration)
        let running = try sandbox.start(try await busyboxSpec(["/bin/sleep", "60"]))
        let frozen = try sandbox.start(try await busyboxSpec(["/bin/sleep", "60"]))
        try frozen.freeze()
        await sandbox.shutdown()
        #expect(running.exit != nil)
        #expect(frozen.exit != nil)
        #expect(env.cgroupDirectories().isEmpty)
        #expect(try FileSystem.subdirectories(env.stateDirectory + "/instances").isEmpty)
    }
}
