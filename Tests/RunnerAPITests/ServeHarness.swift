import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner serve` started as users start it, for the tests that talk to it over HTTP.
enum ServeHarness {
    /// Processes whose command line mentions this environment's state directory: the server and
    /// its parked launchers (which share its memory, and so its command line).
    static func processes(of env: TestEnvironment) -> [Int32] {
        ((try? FileSystem.list("/proc")) ?? []).compactMap { Int32($0) }.filter { pid in
            ((try? FileSystem.read("/proc/\(pid)/cmdline")) ?? "").contains(env.stateDirectory)
        }
    }

    /// Starts a server on `port` and waits until it answers /health; extra arguments (a gRPC
    /// listener, say) go after the usual ones.
    ///
    /// Hot starts may take 30 s unless `environment` says otherwise: Fn's 5 s is what a node
    /// gives, but a real Python FDK started while the whole suite and two CPU hogs share two
    /// cores once took longer than that (a 504 in a CI rehearsal). No serve test is about that
    /// limit.
    static func start(
        _ env: TestEnvironment, data: String, port: Int, environment: [String: String] = [:], arguments: [String] = []
    ) async throws -> (Subprocess, HTTPTestClient) {
        let server = try Subprocess.fnrunner(
            ["serve", "--listen", "127.0.0.1:\(port)", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot]
                + arguments,
            environment: ["FN_HOT_START_TIMEOUT_MSECS": "30000"].merging(environment) { $1 })
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

    /// Creates an app (with `appFields`) and a fn of `image` (with `fnFields`) through the
    /// API; returns the app's and the fn's ids.
    static func deployApp(
        _ c: HTTPTestClient, app: String, fn: String, image: String = "fn-test/hello-stream:1", memory: Int = 64,
        appFields: [String: Any] = [:], fnFields: [String: Any] = [:]
    ) async throws -> (appID: String, fnID: String) {
        let a = try await c.json("POST", "/v2/apps", appFields.merging(["name": app]) { $1 })
        let appID = try #require(a.json["id"] as? String, "\(a.text)")
        let fields = fnFields.merging(["app_id": appID, "name": fn, "image": image, "memory": memory]) { $1 }
        let f = try await c.json("POST", "/v2/fns", fields)
        return (appID, try #require(f.json["id"] as? String, "\(f.text)"))
    }

    /// Creates an app and a hello-stream fn through the API; returns the fn's id.
    static func deploy(_ c: HTTPTestClient, app: String, fn: String, memory: Int) async throws -> String {
        try await deployApp(c, app: app, fn: fn, memory: memory).fnID
    }

    /// Imports one more tag of the hello-stream layout (`sh`, say) into a server's data dir.
    static func importHelloStream(tag: String, into data: String) async throws {
        let imported = try Subprocess.fnrunner(["import", "--data-dir", data, try await ImageFixtures.helloStreamLayout(), "--name", "fn-test/hello-stream:\(tag)"])
        #expect(await imported.exit() == 0, "\(imported.stderr)")
    }

    /// `stop` for a defer body (which cannot await): blocks its thread until the server ended.
    static func stopBlocking(_ server: Subprocess, _ env: TestEnvironment) {
        server.signal(SIGTERM)
        #expect(server.wait() == 0, "\(server.stderr)")
        #expect(env.cgroupDirectories().isEmpty, "the server ended its containers and removed their cgroups")
    }

    /// Stops a server with SIGTERM and checks it left no cgroup behind.
    static func stop(_ server: Subprocess, _ env: TestEnvironment) async {
        server.signal(SIGTERM)
        #expect(await server.exit() == 0, "\(server.stderr)")
        #expect(env.cgroupDirectories().isEmpty, "the server ended its containers and removed their cgroups")
    }
}
