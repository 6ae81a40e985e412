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
            let layout = try await ImageFixtures.directory() + "/layers"
            let common = ["--data-dir", data]

            let imported = try Subprocess.fnrunner(["import", layout, "--name", "fn-test/layers:1"] + common)
            #expect(await imported.exit() == 0, "\(imported.stderr)")
            #expect(imported.stdout.hasPrefix("docker.io/fn-test/layers:1 sha256:"))

            let listed = try Subprocess.fnrunner(["images", "--json"] + common)
            #expect(await listed.exit() == 0)
            #expect(listed.stdout.contains("\"name\":\"docker.io/fn-test/layers:1\""))

            // Entrypoint ["/bin/sh","-c"] + the command line replacing Cmd; User app (1234:2345); WorkingDir /d.
            let run = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--env", "EXTRA=x"] + common
                    + ["fn-test/layers:1", "--", "id -u; id -g; pwd; echo $FROM_IMAGE$EXTRA"])
            #expect(await run.exit() == 0, "\(run.stderr)")
            #expect(run.stdout == "1234\n2345\n/d\n1x\n")

            let defaults = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot] + common + ["fn-test/layers:1"])
            #expect(await defaults.exit() == 0, "\(defaults.stderr)")
            #expect(defaults.stdout == "ok\n")

            let flat = data + "/flat"
            let unpacked = try Subprocess.fnrunner(["unpack", "fn-test/layers:1", flat] + common)
            #expect(await unpacked.exit() == 0, "\(unpacked.stderr)")
            #expect(try FileSystem.list(flat + "/d") == ["z"])

            let removed = try Subprocess.fnrunner(["rmi", "fn-test/layers:1"] + common)
            #expect(await removed.exit() == 0, "\(removed.stderr)")
            // Not in the store any more: run tries to pull it, and docker.io is not reachable here.
            let gone = try Subprocess.fnrunner(["images"] + common)
            #expect(await gone.exit() == 0)
            #expect(!gone.stdout.contains("fn-test/layers"))
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func runPullsAMissingImageFromARegistryAndPullReportsIt() async throws {
        try await withSharedGate {
            let env = TestEnvironment("pull")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let registry = try await RegistryServer(.plain)
            defer { registry.stop() }
            try await registry.push("oci:\(try await ImageFixtures.directory())/layers:1-gzip", as: "fn-test/cli:1")
            let run = try Subprocess.fnrunner(
                ["run", "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, "--data-dir", data,
                 "\(registry.host)/fn-test/cli:1", "--", "/bin/cat", "/d/z"])
            #expect(await run.exit() == 0, "\(run.stderr)")
            #expect(run.stdout == "z from layer 2\n")
            let pull = try Subprocess.fnrunner(["pull", "\(registry.host)/fn-test/cli:1", "--data-dir", data])
            #expect(await pull.exit() == 0, "\(pull.stderr)")
            #expect(pull.stdout.hasPrefix("\(registry.host)/fn-test/cli:1 sha256:"))
            #expect(pull.stdout.contains("3 layers"))
            let missing = try Subprocess.fnrunner(["pull", "\(registry.host)/fn-test/absent:1", "--data-dir", data])
            #expect(await missing.exit() == 1)
            #expect(missing.stderr.contains("not found"))
        }
    }

    @Test func importingSomethingThatIsNotAnImageFailsClearly() async throws {
        try await withSharedGate {
            let data = "/tmp/fnrunner-test-data-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            defer { try? FileSystem.removeTree(data) }
            let missing = try Subprocess.fnrunner(["import", "/nonexistent/path", "--name", "a/b:c", "--data-dir", data])
            #expect(await missing.exit() == 1)
            #expect(missing.stderr.contains("/nonexistent/path"))
            let noName = try Subprocess.fnrunner(["import", try await ImageFixtures.directory() + "/layers", "--data-dir", data])
            #expect(await noName.exit() == 1)
            #expect(noName.stderr.contains("--name"))
            let badName = try Subprocess.fnrunner(["import", try await ImageFixtures.directory() + "/layers", "--name", "Bad Name", "--data-dir", data])
            #expect(await badName.exit() == 1)
            #expect(badName.stderr.contains("invalid image reference"))
            let badSetting = try Subprocess.fnrunner(
                ["import", try await ImageFixtures.directory() + "/layers", "--name", "a/b:c", "--data-dir", data],
                environment: ["FN_PYTHON_BYTECODE": "maybe"])
            #expect(await badSetting.exit() == 1)
            #expect(badSetting.stderr.contains("FN_PYTHON_BYTECODE must be true or false, not \"maybe\""), "\(badSetting.stderr)")
        }
    }

    @Test func importingAnImageWithoutPythonRecordsThatWithoutASandbox() async throws {
        try await withSharedGate {
            let env = TestEnvironment("imp-nopy")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let imported = try Subprocess.fnrunner(
                ["import", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot,
                 try await ImageFixtures.helloStreamLayout(), "--name", "fn-test/hello-stream:1"])
            #expect(await imported.exit() == 0, "\(imported.stderr)")
            #expect(!imported.stderr.contains("bytecode"), "\(imported.stderr)")
            #expect(try FileSystem.list(data + "/bytecode/skipped").count == 1)
            #expect(!FileSystem.exists(env.stateDirectory), "no sandbox was opened")
        }
    }
}
