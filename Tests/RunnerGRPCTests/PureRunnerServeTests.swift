import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Runner
import RunnerGRPC
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner serve --listen none --grpc-listen …`: a pure runner with real containers, as Fn's
/// load balancer would use it.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct PureRunnerServeTests {
    func freePort() throws -> Int { try Host.freeLoopbackPort() }

    func model(type: String = "sync", id: String = CallID.make()) -> String {
        """
        {"id":"\(id)","image":"fn-test/hello-stream:1","type":"\(type)","memory":64,"timeout":30,"idle_timeout":30,\
        "method":"POST","url":"http://lb.test/invoke/f1","app_id":"a1","app_name":"app","fn_id":"f1","headers":{}}
        """
    }

    func waitUntilUp(_ c: RunnerClient, _ server: Subprocess) async throws {
        for _ in 0..<500 {
            if (try? await c.status2(.init())) != nil { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the pure runner did not answer Status2: \(server.stderr)")
        throw RunnerError(.unavailable, "no pure runner", step: "test")
    }

    @Test func aPureRunnerServesRealFunctionsOverGRPCAndStopsCleanly() async throws {
        try await withHelloStreamData("grpc") { env, data in
            let port = try freePort()
            let server = try Subprocess.fnrunner([
                "serve", "--listen", "none", "--grpc-listen", "127.0.0.1:\(port)", "--data-dir", data, "--state-dir", env.stateDirectory,
                "--cgroup-root", env.cgroupRoot,
            ])
            try await withGRPCClient(
                transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
            ) { grpc in
                let c = RunnerClient(wrapping: grpc)
                try await waitUntilUp(c, server)
                let hello = try await GRPCHarness.engage(c, model: model(), body: Array("World".utf8))
                #expect(GRPCHarness.text(hello) == "Hello World", "\(hello) \(server.stderr)")
                if case .finished(let f)? = hello.last?.body { #expect(f.success && f.errorCode == 0) } else { Issue.record("no finished") }
                let drip = try await GRPCHarness.engage(c, model: model(), body: Array("!drip 3 50".utf8))
                #expect(GRPCHarness.text(drip) == "drip 0\ndrip 1\ndrip 2\n")
                let detached = try await GRPCHarness.engage(c, model: model(type: "detached"), body: Array("later".utf8))
                if case .resultStart(let s)? = detached.first?.body { #expect(s.http.statusCode == 202) } else { Issue.record("\(detached)") }
                let crash = try await GRPCHarness.engage(c, model: model(), body: Array("!crash".utf8))
                if case .finished(let f)? = crash.last?.body {
                    #expect(!f.success && f.errorCode == 502 && f.errorUser, "\(f)")
                } else {
                    Issue.record("\(crash)")
                }
            }
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty)
        }
    }

    @Test func aTracedPureRunnerMakesTheLoadBalancersTraceTheParentOfItsCallsAndTheFunctions() async throws {
        try await withHelloStreamData("grpc-trace") { env, data in
            let receiver = try await OTLPReceiver(env)
            let port = try freePort()
            let server = try Subprocess.fnrunner(
                [
                    "serve", "--listen", "none", "--grpc-listen", "127.0.0.1:\(port)", "--data-dir", data, "--state-dir", env.stateDirectory,
                    "--cgroup-root", env.cgroupRoot,
                ], environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"])
            let (lbTrace, lbSpan, id) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", CallID.make())
            var answer: [RunnerMsg] = []
            try await withGRPCClient(
                transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
            ) { grpc in
                let c = RunnerClient(wrapping: grpc)
                try await waitUntilUp(c, server)
                answer = try await GRPCHarness.engage(
                    c, model: model(id: id), body: Array("!headers".utf8), metadata: ["traceparent": "00-\(lbTrace)-\(lbSpan)-01"])
            }
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            let call = try #require(receiver.call(id), "\(receiver.spans.map(\.name))")
            #expect(call.traceID == lbTrace && call.parentID == lbSpan)
            let function = try #require(OTLPReceiver.children(of: call, in: receiver.spans).first { $0.name == "function" })
            #expect(GRPCHarness.text(answer).lowercased().contains("traceparent: 00-\(lbTrace)-\(function.spanID)-01"), "\(GRPCHarness.text(answer))")
        }
    }

    @Test func withoutHTTPAndWithoutGRPCAServerWouldTakeNoCallsAndRefusesToStart() async throws {
        let env = TestEnvironment("grpc")
        defer { env.cleanUp() }
        let server = try Subprocess.fnrunner(["serve", "--listen", "none", "--state-dir", env.stateDirectory, "--data-dir", env.stateDirectory + "-data"])
        #expect(await server.exit() != 0)
        #expect(server.stderr.contains("--listen none needs --grpc-listen"), "\(server.stderr)")
        try? FileSystem.removeTree(env.stateDirectory + "-data")
        let bad = try Subprocess.fnrunner(["serve", "--grpc-listen", "nowhere", "--state-dir", env.stateDirectory])
        #expect(await bad.exit() != 0)
        #expect(bad.stderr.contains("--grpc-listen must be host:port"), "\(bad.stderr)")
    }

    @Test func pullFailuresVolumesAndOversizedBodiesReachTheLBWithFnsStatusesAndUserFlags() async throws {
        try await withHelloStreamData("grpc-errors") { env, data in
            let imported = try Subprocess.fnrunner(["import", "--data-dir", data, try await ImageFixtures.directory() + "/layers", "--name", "t/layers:volumes"])
            #expect(await imported.exit() == 0, "\(imported.stderr)")
            let registry = try await RegistryServer(.plain)
            defer { registry.stop() }
            let guarded = try await RegistryServer(.basicAuth)
            defer { guarded.stop() }
            let port = try freePort()
            let server = try Subprocess.fnrunner(
                [
                    "serve", "--listen", "none", "--grpc-listen", "127.0.0.1:\(port)", "--data-dir", data, "--state-dir", env.stateDirectory,
                    "--cgroup-root", env.cgroupRoot,
                ], environment: ["FN_MAX_REQUEST_SIZE": "1000"])
            try await withGRPCClient(
                transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
            ) { grpc in
                let c = RunnerClient(wrapping: grpc)
                for _ in 0..<500 {
                    if (try? await c.status2(.init())) != nil { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let cases: [(image: String, body: Int, code: Int32, user: Bool, prefix: String)] = [
                    ("\(registry.host)/nope/missing:1", 1, 404, true, "Failed to pull image '\(registry.host)/nope/missing:1': "),
                    ("\(guarded.host)/nope/guarded:1", 1, 401, true, "Failed to pull image '\(guarded.host)/nope/guarded:1': "),
                    ("t/layers:volumes", 1, 400, false, "image has Volume definition (/data)"),
                    ("fn-test/hello-stream:1", 5000, 413, false, "Request content too large"),
                ]
                for t in cases {
                    let model = model().replacingOccurrences(of: "fn-test/hello-stream:1", with: t.image)
                    let msgs = try await GRPCHarness.engage(c, model: model, body: [UInt8](repeating: 0x61, count: t.body))
                    guard case .finished(let f)? = msgs.last?.body else {
                        Issue.record("\(t.image): \(msgs)")
                        continue
                    }
                    #expect(!f.success && f.errorCode == t.code && f.errorUser == t.user && f.errorStr.hasPrefix(t.prefix), "\(t.image): \(f)")
                }
            }
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
            #expect(env.cgroupDirectories().isEmpty)
        }
    }
}
