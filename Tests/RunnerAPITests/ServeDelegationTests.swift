import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner serve --cgroup-delegated` started inside a cgroup made for it, as systemd's
/// Delegate=yes starts it: everything it makes stays inside that cgroup.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct ServeDelegationTests {
    /// The mounts of the hierarchies the runner uses here.
    static func mounts() -> [String] {
        guard let layout = Host.layout else { return [] }
        return Array(Set(layout.v1Controllers.compactMap { layout.v1Mounts[$0] } + [layout.v2Mount].compactMap { $0 })).sorted()
    }

    @Test func aDelegatedServerKeepsItselfAndItsContainersInsideTheCgroupItWasGiven() async throws {
        try await withHelloStreamData("deleg") { env, data in
            // The "unit's" cgroup: the environment's root, so cleanUp removes whatever is left.
            let unit = env.cgroupRoot
            for mount in Self.mounts() { try FileSystem.makeDirectory(mount + "/" + unit) }
            let port = try Host.freeLoopbackPort()
            let move = Self.mounts().map { "echo $$ > \($0)/\(unit)/cgroup.procs" }.joined(separator: " && ")
            let serve = [Subprocess.fnrunnerPath, "serve", "--cgroup-delegated", "--listen", "127.0.0.1:\(port)", "--data-dir", data,
                "--state-dir", env.stateDirectory].joined(separator: " ")
            let server = try Subprocess(
                ["/bin/sh", "-c", "\(move) && exec \(serve)"],
                environment: [
                    "FN_SANDBOX_POOL_SIZE": "1", "FN_FUNCTION_NETWORK": "none", "FN_FUNCTION_NODE_NETNS": Subprocess.noNodeNamespace,
                ])
            defer {
                server.signal(SIGKILL)
                server.reap()
            }
            let c = HTTPTestClient(port: port)
            var up = false
            for _ in 0..<3000 where !up {
                up = (try? await c.send("GET", "/health"))?.status == 200
                if !up { try await Task.sleep(for: .milliseconds(10)) }
            }
            try #require(up, "\(server.stderr)")

            let own = try FileSystem.read("/proc/\(server.pid)/cgroup")
            for line in own.split(separator: "\n") {
                let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                guard fields.count == 3, ["memory", "pids", "cpu,cpuacct", ""].contains(fields[1]) else { continue }
                #expect(fields[2] == "/\(unit)/runner", "the server moved into its leaf in every hierarchy: \(line)")
            }
            let fnID = try await ServeHarness.deploy(c, app: "delegated", fn: "hello", memory: 64)
            let hello = try await c.send("POST", "/invoke/\(fnID)", body: Array("inside".utf8))
            #expect(hello.status == 200 && hello.text == "Hello inside", "\(hello.text) \(server.stderr)")
            for mount in Self.mounts() {
                let instances = try FileSystem.subdirectories("\(mount)/\(unit)/fnrunner")
                #expect(instances.count == 1, "\(mount): \(instances)")
                let containers = try instances.flatMap { try FileSystem.subdirectories("\(mount)/\(unit)/fnrunner/\($0)") }
                #expect(!containers.isEmpty, "the hot container's cgroup is under the unit in \(mount)")
                #expect(try FileSystem.subdirectories(mount + "/" + unit).sorted() == ["fnrunner", "runner"], "\(mount)")
            }

            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            for mount in Self.mounts() {
                let left = try FileSystem.subdirectories(mount + "/" + unit)
                #expect(left == ["runner"], "only the runner's own leaf stays until the unit goes: \(mount) \(left)")
            }
        }
    }

    @Test func delegationFromCgroupsThatDisagreeIsRefusedBeforeAnythingIsMade() async throws {
        try await withHelloStreamData("deleg-split") { env, data in
            // In the test's cgroup in the v1 hierarchies only: the unified tree still has the
            // process where the test runs, so there is no one cgroup that was delegated.
            guard let layout = Host.layout, layout.kind == .hybrid else { return }
            let unit = env.cgroupRoot
            let v1 = Array(Set(layout.v1Controllers.compactMap { layout.v1Mounts[$0] })).sorted()
            for mount in v1 { try FileSystem.makeDirectory(mount + "/" + unit) }
            let move = v1.map { "echo $$ > \($0)/\(unit)/cgroup.procs" }.joined(separator: " && ")
            let serve = [Subprocess.fnrunnerPath, "serve", "--cgroup-delegated", "--listen", "127.0.0.1:0", "--data-dir", data,
                "--state-dir", env.stateDirectory].joined(separator: " ")
            let server = try Subprocess(["/bin/sh", "-c", "\(move) && exec \(serve)"], environment: ["FN_FUNCTION_NETWORK": "none"])
            #expect(await server.exit() != 0)
            #expect(server.stderr.contains("one cgroup path in every hierarchy"), "\(server.stderr)")
            for mount in v1 { #expect(try FileSystem.subdirectories(mount + "/" + unit).isEmpty, "nothing made under \(mount)") }
        }
    }
}
