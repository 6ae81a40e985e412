import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner serve` as users run it: the binary, a real image, real containers, SIGTERM.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct ServeCommandTests {
    /// A loopback port nobody listens on now.
    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    func startServer(_ env: TestEnvironment, data: String, port: Int) async throws -> (Subprocess, HTTPTestClient) {
        let server = try Subprocess.fnrunner([
            "serve", "--listen", "127.0.0.1:\(port)", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot,
        ])
        let client = HTTPTestClient(port: port)
        for _ in 0..<3000 {
            if (try? await client.send("GET", "/health"))?.status == 200 { return (server, client) }
            if kill(server.pid, 0) != 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        server.signal(SIGKILL)
        Issue.record("the server did not come up: \(server.stderr)")
        throw RunnerError(.unavailable, "no server", step: "test")
    }

    @Test func aServedFunctionIsCreatedInvokedHotAndTheServerStopsCleanlyOnSIGTERM() async throws {
        try await withSharedGate {
            let env = TestEnvironment("serve")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let imported = try Subprocess.fnrunner(["import", "--data-dir", data, try ImageFixtures.helloStreamLayout(), "--name", "fn-test/hello-stream:1"])
            #expect(imported.wait() == 0, "\(imported.stderr)")
            let port = try freePort()
            var (server, c) = try await startServer(env, data: data, port: port)

            let app = try await c.json("POST", "/v2/apps", ["name": "served"])
            let appID = try #require(app.json["id"] as? String, "\(app.text)")
            let fn = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": "hello", "image": "fn-test/hello-stream:1", "memory": 64])
            let fnID = try #require(fn.json["id"] as? String, "\(fn.text)")
            let cold = try await c.send("POST", "/invoke/\(fnID)", body: Array("cold".utf8))
            #expect(cold.status == 200 && cold.text == "Hello cold", "\(cold.text) \(server.stderr)")
            let hot = try await c.send("POST", "/invoke/\(fnID)", body: Array("hot".utf8))
            #expect(hot.status == 200 && hot.text == "Hello hot")
            let hotID = try #require(hot.header("Fn-Call-Id"))
            let record = try await c.send("GET", "/v2/fns/\(fnID)/calls/\(hotID)")
            #expect((record.json["stats"] as? [String: Any])?["reused_container"] as? Bool == true, "\(record.text)")

            // `fnrunner ps` asks the server for its hot containers.
            let ps = try Subprocess.fnrunner(["ps", "--port", "\(port)"])
            #expect(ps.wait() == 0, "\(ps.stderr)")
            let row = ps.stdout.split(separator: "\n").dropFirst().first.map { $0.split(separator: "\t").map(String.init) } ?? []
            #expect(row.count == 6 && row[1] == fnID && ["idle", "frozen", "busy"].contains(row[2]) && row[5] == "2", "\(ps.stdout)")
            // Idle past the freeze delay (50 ms by default): the next call thaws the container first.
            try await Task.sleep(for: .milliseconds(300))
            let thawed = try await c.send("POST", "/invoke/\(fnID)", body: Array("thawed".utf8))
            #expect(thawed.text == "Hello thawed")
            let metrics = try await c.send("GET", "/metrics")
            #expect(metrics.text.contains("fn_calls_total{fn_id=\"\(fnID)\",status=\"success\"} 3"))
            let thaws = metrics.text.split(separator: "\n").first { $0.hasPrefix("fn_container_thaw_seconds_count ") }
            #expect(thaws.flatMap { Int($0.split(separator: " ")[1]) } ?? 0 >= 1, "\(metrics.text)")
            #expect(metrics.text.contains("fn_image_pull_seconds_count 0"), "the image was imported, not pulled")

            server.signal(SIGTERM)
            #expect(server.wait() == 0, "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty, "the server ended its containers and removed their cgroups")

            // The store outlives the server.
            (server, c) = try await startServer(env, data: data, port: port)
            let apps = try await c.send("GET", "/v2/apps?name=served")
            #expect((apps.json["items"] as? [Any])?.count == 1)
            server.signal(SIGTERM)
            #expect(server.wait() == 0)
        }
    }

    @Test func theRealPythonFDKAnswersThroughInvokeAndItsHTTPTrigger() async throws {
        try await withSharedGate {
            let env = TestEnvironment("serve")
            defer { env.cleanUp() }
            let data = env.stateDirectory + "-data"
            defer { try? FileSystem.removeTree(data) }
            let layout = try FDKImage.layout()
            for tag in ["pyfdk", "pyfdk-teapot", "pyfdk-boom"] {
                let imported = try Subprocess.fnrunner(["import", "--data-dir", data, layout, "--name", "fn-test/pyfdk:\(tag)"])
                #expect(imported.wait() == 0, "\(imported.stderr)")
            }
            let (server, c) = try await startServer(env, data: data, port: try freePort())
            defer {
                server.signal(SIGTERM)
                server.wait()
            }
            let appID = try #require(try await c.json("POST", "/v2/apps", ["name": "py"]).json["id"] as? String)
            var fns: [String: String] = [:]
            for tag in ["pyfdk", "pyfdk-teapot", "pyfdk-boom"] {
                let f = try await c.json("POST", "/v2/fns", ["app_id": appID, "name": tag, "image": "fn-test/pyfdk:\(tag)"])
                fns[tag] = try #require(f.json["id"] as? String, "\(f.text)")
                _ = try await c.json("POST", "/v2/triggers", ["app_id": appID, "fn_id": fns[tag]!, "name": tag, "type": "http", "source": "/\(tag)"])
            }
            let hello = try await c.send("POST", "/invoke/\(fns["pyfdk"]!)", body: Array("caller".utf8))
            #expect(hello.status == 200 && hello.text == "Hello caller", "\(hello.text) \(server.stderr)")
            #expect(hello.header("Fn-Fdk-Version")?.hasPrefix("fdk-python/") == true)

            // Through the trigger the FDK's gateway status and headers become the HTTP answer.
            let teapot = try await c.send("GET", "/t/py/pyfdk-teapot")
            #expect(teapot.status == 418 && teapot.text == "short and stout", "\(teapot.status) \(teapot.text)")
            let boom = try await c.send("POST", "/invoke/\(fns["pyfdk-boom"]!)")
            #expect(boom.status == 502 && boom.message == "function failed")
            let calls = try await c.send("GET", "/v2/fns/\(fns["pyfdk-boom"]!)/calls")
            #expect((calls.json["items"] as? [[String: Any]])?.first?["status"] as? String == "error")
        }
    }

    @Test func anUnusableStoreOrAddressIsAStartupError() async throws {
        let env = TestEnvironment("serve")
        defer { env.cleanUp() }
        let notADir = "/tmp/fnrunner-serve-file-\(getpid())"
        try "x".write(toFile: notADir, atomically: true, encoding: .utf8)
        defer { unlink(notADir) }
        let badData = try Subprocess.fnrunner(["serve", "--data-dir", notADir, "--state-dir", env.stateDirectory, "--listen", "127.0.0.1:0"])
        #expect(badData.wait() != 0)
        #expect(badData.stderr.contains(notADir), "\(badData.stderr)")
        let badListen = try Subprocess.fnrunner(["serve", "--listen", "nonsense", "--state-dir", env.stateDirectory])
        #expect(badListen.wait() != 0)
        #expect(badListen.stderr.contains("--listen must be host:port"), "\(badListen.stderr)")
        let noServer = try Subprocess.fnrunner(["ps", "--port", "\(try freePort())"])
        #expect(noServer.wait() != 0)
        #expect(noServer.stderr.contains("cannot connect"), "\(noServer.stderr)")
    }
}
