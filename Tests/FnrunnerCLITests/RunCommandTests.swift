import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct RunCommandTests {
    func run(_ env: TestEnvironment, _ args: [String]) async throws -> Subprocess {
        let p = try Subprocess.fnrunner(
            ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot] + args)
        await p.exit()
        return p
    }

    @Test func itExitsWithTheCommandsExitCodeAndPassesStdout() async throws {
        try await withSharedGate {
            let env = TestEnvironment("cli")
            defer { env.cleanUp() }
            let p = try await run(env, ["--rootfs", try await Fixtures.busybox(), "--", "/bin/sh", "-c", "echo hello; exit 7"])
            #expect(await p.exit() == 7)
            #expect(p.stdout == "hello\n")
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func outOfMemoryPrintsItAndExits137() async throws {
        try await withSharedGate {
            let env = TestEnvironment("cli")
            defer { env.cleanUp() }
            let p = try await run(env, ["--rootfs", try await Fixtures.busybox(), "--memory", "24", "--", "/bin/probe", "alloc", "200"])
            #expect(await p.exit() == 137)
            #expect(p.stderr.contains("out of memory"))
        }
    }

    @Test func aStartupFailurePrintsTheFailingStepAndExits125() async throws {
        try await withSharedGate {
            let env = TestEnvironment("cli")
            defer { env.cleanUp() }
            let p = try await run(env, ["--rootfs", try await Fixtures.busybox(), "--", "/bin/nope"])
            #expect(await p.exit() == 125)
            #expect(p.stderr.contains("execve"))
            #expect(p.stderr.contains("/bin/nope"))
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func badArgumentsExit125WithTheArgumentNamed() async throws {
        try await withSharedGate {
            let env = TestEnvironment("cli")
            defer { env.cleanUp() }
            let rootfs = try await Fixtures.busybox()
            for (args, word) in [
                (["--rootfs", "/nonexistent", "--", "/bin/true"], "/nonexistent"),
                (["--rootfs", rootfs, "--user", "root", "--", "/bin/true"], "--user"),
                (["--rootfs", rootfs, "--memory", "0", "--", "/bin/true"], "--memory"),
                (["--rootfs", rootfs, "--cpus", "5", "--", "/bin/true"], "CPU limit"),
                (["--rootfs", rootfs, "--pids", "0", "--", "/bin/true"], "pids"),
                (["--rootfs", rootfs, "--network", "internet", "--", "/bin/true"], "--network"),
                // The bridge itself only in a test's own namespace: here, the safety net's.
                (["--rootfs", rootfs, "--network", "bridge", "--", "/bin/true"], Subprocess.noNodeNamespace),
                (["--rootfs", rootfs], "no command"),
            ] {
                let p = try await run(env, args)
                #expect(await p.exit() == 125, "\(args): \(p.stderr)")
                #expect(p.stderr.contains(word), "\(args): \(p.stderr)")
            }
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func keepFrozenFreezesReportsThawsAndLetsTheCommandFinish() async throws {
        try await withSharedGate {
            let env = TestEnvironment("cli")
            defer { env.cleanUp() }
            let p = try await run(
                env,
                ["--rootfs", try await Fixtures.busybox(), "--freeze-after-ms", "100", "--keep-frozen-ms", "300", "--",
                 "/bin/sh", "-c", "sleep 0.6; echo finished"])
            #expect(await p.exit() == 0, "\(p.stderr)")
            #expect(p.stderr.contains("frozen in"))
            #expect(p.stderr.contains("still frozen after 300 ms"))
            #expect(p.stderr.contains("thawed in"))
            #expect(p.stdout == "finished\n")
        }
    }

    @Test func aFirstInterruptReachesTheCommandThroughInit() async throws {
        try await withSharedGate {
            let env = TestEnvironment("cli")
            defer { env.cleanUp() }
            let p = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--rootfs", try await Fixtures.busybox(),
                 "--", "/bin/sh", "-c", "echo started; exec sleep 60"])
            // Once the command prints, init runs with its handlers and the command with its own.
            try await waitUntil(timeoutMillis: 30_000) { p.stdout == "started\n" }
            p.signal(SIGINT)
            #expect(await p.exit() == 130, "\(p.stderr)")  // sleep ended by SIGINT, as under docker run --init
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func aSecondInterruptKillsTheContainerAndCleansUp() async throws {
        try await withSharedGate {
            let env = TestEnvironment("cli")
            defer { env.cleanUp() }
            let p = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--rootfs", try await Fixtures.busybox(),
                 "--", "/bin/sh", "-c", "trap '' INT; echo trapped; sleep 60"])
            // Not before sh ignores INT: an interrupt that came earlier would end it (130).
            try await waitUntil(timeoutMillis: 30_000) { p.stdout == "trapped\n" }
            p.signal(SIGINT)  // passed on to sh, which ignores it
            try await Task.sleep(nanoseconds: 100_000_000)
            p.signal(SIGINT)
            #expect(await p.exit() == 137)
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func withNoInitTheCommandIsPID1AndIgnoresAnInterrupt() async throws {
        try await withSharedGate {
            let env = TestEnvironment("cli")
            defer { env.cleanUp() }
            let p = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--rootfs", try await Fixtures.busybox(),
                 "--no-init", "--", "/bin/sh", "-c", "echo $$; sleep 60"])
            try await waitUntil(timeoutMillis: 30_000) { p.stdout == "1\n" }
            p.signal(SIGINT)  // PID 1 without a handler ignores it, as in Docker without --init
            try await Task.sleep(nanoseconds: 100_000_000)
            p.signal(SIGINT)
            #expect(await p.exit() == 137)
            #expect(p.stdout == "1\n")
            #expect(env.cgroupDirectories().isEmpty)
        }
    }
}
