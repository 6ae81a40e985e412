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
    }

    func footprint(_ env: TestEnvironment, _ sandbox: Sandbox) throws -> Footprint {
        let cgroups = env.settledCgroupDirectories(sandbox).sorted()  // first: it waits for the pool
        return Footprint(
            fds: Host.containerFDs(), zombies: Host.zombieChildren(), cgroups: cgroups,
            mounts: Host.mounts(containing: env.stateDirectory) + Host.mounts(containing: "fnrunner"),
            stateEntries: try Shell.output("find \(env.stateDirectory) | sort").split(separator: "\n").map(String.init))
    }

    @Test func fiveHundredContainersStartedAndClosedLeaveNothingBehind() async throws {
        try await withSandbox("500", exclusive: true) { sandbox, env in
            var spec = try busyboxSpec(["/bin/true"])
            spec.limits = .init(memoryBytes: 64 << 20, cpuMillicores: 500, pids: 16)
            // One warm-up start so lazily created process-wide things (the reaper thread) exist.
            let warm = try sandbox.start(spec)
            _ = await warm.wait()
            try await warm.close()
            let before = try footprint(env, sandbox)
            for i in 0..<500 {
                let c = try sandbox.start(spec)
                let exit = await c.wait()
                try await c.close()
                #expect(exit.process == .exited(0), "container \(i): \(exit)")
            }
            let after = try footprint(env, sandbox)
            #expect(after == before)
            #expect(sandbox.liveContainers.isEmpty)
        }
    }

    @Test func failedStartsLeaveNothingBehind() async throws {
        try await withSandbox("fail", exclusive: true) { sandbox, env in
            let before = try footprint(env, sandbox)
            for _ in 0..<50 {
                #expect(throws: RunnerError.self) { _ = try sandbox.start(try busyboxSpec(["/bin/missing"])) }
                var bad = try busyboxSpec(["/bin/true"])
                bad.workingDirectory = "/no/such/dir"
                #expect(throws: RunnerError.self) { _ = try sandbox.start(bad) }
            }
            #expect(try footprint(env, sandbox) == before)
        }
    }

    @Test func shutdownClosesLiveAndFrozenContainersAndRemovesTheInstance() async throws {
        try await withSharedGate { try await shutdownScenario() }
    }

    func shutdownScenario() async throws {
        let env = TestEnvironment("shut")
        defer { env.cleanUp() }
        let sandbox = try Sandbox(configuration: env.configuration)
        let running = try sandbox.start(try busyboxSpec(["/bin/sleep", "60"]))
        let frozen = try sandbox.start(try busyboxSpec(["/bin/sleep", "60"]))
        try frozen.freeze()
        await sandbox.shutdown()
        #expect(running.exit != nil)
        #expect(frozen.exit != nil)
        #expect(env.cgroupDirectories().isEmpty)
        #expect(try FileSystem.subdirectories(env.stateDirectory + "/instances").isEmpty)
    }
}
