import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct ImageCommandTests {
    @Test func anImportedImageRunsWithItsConfigAndListsAndRemoves() async throws {
        try await withSharedGate {
            let env = TestEnvironment("img")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let layout = try ImageFixtures.directory() + "/layers"
            let common = ["--data-dir", data]

            let imported = try Subprocess.fnrunner(["import", layout, "--name", "fn-test/layers:1"] + common)
            #expect(imported.wait() == 0, "\(imported.stderr)")
            #expect(imported.stdout.hasPrefix("docker.io/fn-test/layers:1 sha256:"))

            let listed = try Subprocess.fnrunner(["images", "--json"] + common)
            #expect(listed.wait() == 0)
            #expect(listed.stdout.contains("\"name\":\"docker.io/fn-test/layers:1\""))

            // Entrypoint ["/bin/sh","-c"] + the command line replacing Cmd; User app (1234:2345); WorkingDir /d.
            let run = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--env", "EXTRA=x"] + common
                    + ["fn-test/layers:1", "--", "id -u; id -g; pwd; echo $FROM_IMAGE$EXTRA"])
            #expect(run.wait() == 0, "\(run.stderr)")
            #expect(run.stdout == "1234\n2345\n/d\n1x\n")

            let defaults = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot] + common + ["fn-test/layers:1"])
            #expect(defaults.wait() == 0, "\(defaults.stderr)")
            #expect(defaults.stdout == "ok\n")

            let flat = data + "/flat"
            let unpacked = try Subprocess.fnrunner(["unpack", "fn-test/layers:1", flat] + common)
            #expect(unpacked.wait() == 0, "\(unpacked.stderr)")
            #expect(try FileSystem.list(flat + "/d") == ["z"])

            let removed = try Subprocess.fnrunner(["rmi", "fn-test/layers:1"] + common)
            #expect(removed.wait() == 0, "\(removed.stderr)")
            let gone = try Subprocess.fnrunner(["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot] + common + ["fn-test/layers:1"])
            #expect(gone.wait() == 125)
            #expect(gone.stderr.contains("not in the store"))
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func importingSomethingThatIsNotAnImageFailsClearly() async throws {
        try await withSharedGate {
            let data = "/tmp/fnrunner-test-data-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            defer { try? FileSystem.removeTree(data) }
            let missing = try Subprocess.fnrunner(["import", "/nonexistent/path", "--name", "a/b:c", "--data-dir", data])
            #expect(missing.wait() == 1)
            #expect(missing.stderr.contains("/nonexistent/path"))
            let noName = try Subprocess.fnrunner(["import", try ImageFixtures.directory() + "/layers", "--data-dir", data])
            #expect(noName.wait() == 1)
            #expect(noName.stderr.contains("--name"))
            let badName = try Subprocess.fnrunner(["import", try ImageFixtures.directory() + "/layers", "--name", "Bad Name", "--data-dir", data])
            #expect(badName.wait() == 1)
            #expect(badName.stderr.contains("invalid image reference"))
        }
    }
}
