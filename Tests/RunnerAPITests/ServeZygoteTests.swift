import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner.io/zygote: python` through `fnrunner serve`, and what a killed server leaves of it.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct ServeZygoteTests {
    /// The pids in the environment's cgroups (templates, instances, parked forks).
    static func processes(in env: TestEnvironment) -> Set<Int32> {
        var pids = Set<Int32>()
        for dir in env.cgroupDirectories() {
            for line in ((try? FileSystem.read(dir + "/cgroup.procs")) ?? "").split(separator: "\n") {
                if let pid = Int32(line) { pids.insert(pid) }
            }
        }
        return pids
    }

    @Test func forkedInstancesAnswerThroughServeAndAKill9LeavesNothingTheNextServerKeeps() async throws {
        try await withSharedGate {
            let env = TestEnvironment("servezy")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let imported = try Subprocess.fnrunner(
                ["import", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot, try await FDKImage.layout(),
                 "--name", "fn-test/pyfdk:pyfdk-rand"])
            #expect(await imported.exit() == 0, "\(imported.stderr)")
            let port = try Host.freeLoopbackPort()
            var (server, c) = try await ServeHarness.start(env, data: data, port: port)
            let appID = try #require(try await c.json("POST", "/v2/apps", ["name": "zy"]).json["id"] as? String)
            let fn = try await c.json(
                "POST", "/v2/fns",
                ["app_id": appID, "name": "rand", "image": "fn-test/pyfdk:pyfdk-rand", "idle_timeout": 30,
                 "annotations": ["fnrunner.io/zygote": "python"]])
            let fnID = try #require(fn.json["id"] as? String, "\(fn.text)")
            let first = try await c.send("POST", "/invoke/\(fnID)", body: Array("0".utf8))
            #expect(first.status == 200 && first.json["uuid"] != nil, "\(first.text) \(server.stderr)")
            let metrics = try await c.send("GET", "/metrics").text
            #expect(PrometheusText.count(of: "fn_container_starts_total{path=\"forked\"}", in: metrics) == 1, "\(metrics)")

            // The template, the instance and the parked fork: all in the runner's cgroups.
            var before = Set<Int32>()
            for _ in 0..<1000 where before.count < 4 {
                before = Self.processes(in: env)
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(before.count >= 4, "init and Python of the template, an instance and a parked fork: \(before)")
            server.signal(SIGKILL)
            #expect(await server.exit() == 128 + SIGKILL)

            (server, c) = try await ServeHarness.start(env, data: data, port: port)
            // An idle timeout of 30 s kept the instance while the parked fork appeared (under
            // load that can take longer than a second); from now on the instance may end
            // 1 s after its call, so the deleted fn's template ends soon after.
            let shorter = try await c.json("PUT", "/v2/fns/\(fnID)", ["idle_timeout": 1])
            #expect(shorter.status == 200, "\(shorter.text)")
            for pid in before {
                for _ in 0..<500 where Host.isRunning(pid) { try await Task.sleep(for: .milliseconds(10)) }
                #expect(!Host.isRunning(pid), "process \(pid) of the killed server's zygote was ended")
            }
            let again = try await c.send("POST", "/invoke/\(fnID)", body: Array("0".utf8))
            #expect(again.status == 200 && again.json["uuid"] != nil, "a new template serves: \(again.text)")
            // Deleted: the idle instance lives out its idle timeout (1 s), as in Fn, and the
            // template ends with it.
            #expect(try await c.send("DELETE", "/v2/fns/\(fnID)").status == 204)
            func pythons() -> [Int32] {
                Self.processes(in: env).filter { ((try? FileSystem.read("/proc/\($0)/comm")) ?? "").hasPrefix("python") }
            }
            for _ in 0..<1000 where !pythons().isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            #expect(pythons().isEmpty, "no Python process is left once the fn is deleted")
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty, "\(env.cgroupDirectories())")
        }
    }
}
