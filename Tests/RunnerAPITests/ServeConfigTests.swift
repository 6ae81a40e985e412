import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner serve --config FILE`: settings from a file, below flags and the environment.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct ServeConfigTests {
    func serve(_ env: TestEnvironment, data: String, _ args: [String], environment: [String: String] = [:]) throws -> Subprocess {
        try Subprocess.fnrunner(
            ["serve", "--data-dir", data, "--state-dir", env.stateDirectory, "--cgroup-root", env.cgroupRoot] + args, environment: environment)
    }

    func waitForHealth(_ port: Int, _ server: Subprocess) async throws -> HTTPTestClient {
        let c = HTTPTestClient(port: port)
        for _ in 0..<3000 {
            if (try? await c.send("GET", "/health"))?.status == 200 { return c }
            if kill(server.pid, 0) != 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("no server on \(port): \(server.stderr)")
        throw RunnerError(.unavailable, "no server", step: "test")
    }

    @Test func aFilesSettingsApplyAndFlagsAndTheEnvironmentWinOverThem() async throws {
        try await withHelloStreamData("config") { env, data in
            let file = env.stateDirectory + "-serve.env"
            defer { unlink(file) }
            let (p1, p2) = (try Host.freeLoopbackPort(), try Host.freeLoopbackPort())
            try FileSystem.create(
                file,
                contents: """
                    # a node's settings
                    listen=127.0.0.1:\(p1)

                    FN_MAX_REQUEST_SIZE="20"
                    log-format = json
                    FN_SANDBOX_POOL_SIZE=0
                    """)
            let body = Array(#"{"name": "from-the-config-file-test"}"#.utf8)  // 38 bytes

            // The file alone: its port, its request limit, its log format.
            var server = try serve(env, data: data, ["--config", file])
            var c = try await waitForHealth(p1, server)
            #expect(try await c.send("POST", "/v2/apps", body: body).status == 413)
            server.signal(SIGTERM)
            #expect(await server.exit() == 0)
            let lines = server.stderr.split(separator: "\n")
            #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("{") }, "\(server.stderr)")

            // A flag wins over the file's listen, the environment over its FN_MAX_REQUEST_SIZE.
            server = try serve(env, data: data, ["--config=\(file)", "--listen", "127.0.0.1:\(p2)"], environment: ["FN_MAX_REQUEST_SIZE": "1000"])
            c = try await waitForHealth(p2, server)
            #expect(try await c.send("POST", "/v2/apps", body: body).status == 200)
            server.signal(SIGTERM)
            #expect(await server.exit() == 0)
        }
    }

    @Test func serveRunsAsManyEventLoopsAsFN_EVENT_LOOPSSaysAndAtLeastOneByDefault() async throws {
        try await withHelloStreamData("loops") { env, data in
            func loops(_ pid: pid_t) -> Int {
                let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
                return tasks.filter { ((try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8)) ?? "").hasPrefix("NIO-SGLTN") }.count
            }
            for (setting, expected) in [("3", 3...3), (nil, 1...max(1, ProcessInfo.processInfo.activeProcessorCount / 2))] {
                let port = try Host.freeLoopbackPort()
                let server = try serve(
                    env, data: data, ["--listen", "127.0.0.1:\(port)"],
                    environment: ["FN_SANDBOX_POOL_SIZE": "0"].merging(setting.map { ["FN_EVENT_LOOPS": $0] } ?? [:]) { $1 })
                _ = try await waitForHealth(port, server)
                #expect(expected.contains(loops(server.pid)), "FN_EVENT_LOOPS=\(setting ?? "unset"): \(loops(server.pid)) loops")
                server.signal(SIGTERM)
                #expect(await server.exit() == 0)
            }
        }
    }

    @Test func anUnknownKeyABadValueOrAMissingFileStopServeNamingIt() async throws {
        try await withHelloStreamData("config-bad") { env, data in
            let file = env.stateDirectory + "-bad.env"
            defer { unlink(file) }
            for (contents, expected) in [
                ("FN_PORT=8080\n\nlisen=127.0.0.1:1\n", "line 3: unknown setting \"lisen\""),
                ("--listen=127.0.0.1:1\n", "unknown setting \"--listen\" (write options without their dashes)"),
                ("cgroup-delegated=yes\n", "line 1: cgroup-delegated must be true or false, not \"yes\""),
                ("FN_NOT_A_SETTING=1\n", "unknown setting \"FN_NOT_A_SETTING\""),
                ("just words\n", "line 1: \"just words\" is not KEY=VALUE"),
                ("OTEL_EXPORTER_OTLP_ENDPONT=http://127.0.0.1:1\n", "unknown setting \"OTEL_EXPORTER_OTLP_ENDPONT\""),
                // An OpenTelemetry setting from the file reaches tracing's own checks.
                ("OTEL_EXPORTER_OTLP_PROTOCOL=grpc\n", "OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json"),
            ] {
                try FileSystem.create(file, contents: contents)
                let server = try serve(env, data: data, ["--config", file])
                #expect(await server.exit() != 0)
                #expect(server.stderr.contains(expected), "\(server.stderr)")
            }
            let missing = try serve(env, data: data, ["--config", "/nonexistent/serve.env"])
            #expect(await missing.exit() != 0)
            #expect(missing.stderr.contains("--config /nonexistent/serve.env"), "\(missing.stderr)")
            #expect(env.cgroupDirectories().isEmpty, "nothing was made")
        }
    }
}
