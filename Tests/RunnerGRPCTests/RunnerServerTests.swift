import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import Runner
import RunnerGRPC
import RunnerOS
import SwiftProtobuf
import Synchronization
import TestSupport
import Testing

/// The pure runner's own gRPC server at the edges of the protocol: what it refuses, how an RPC
/// ends early, and how it stops.
struct RunnerServerTests {
    typealias H = GRPCHarness

    func expectRPCError(_ code: RPCError.Code, mentioning text: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("the RPC succeeded; expected \(code)")
        } catch let error as RPCError {
            #expect(error.code == code, "\(error)")
            #expect(error.message.contains(text), "\(error)")
        } catch {
            Issue.record("not an RPCError: \(error)")
        }
    }

    @Test func anUnknownMethodIsUnimplementedAndTheConnectionServesOn() async throws {
        try await H.withServer { service, _, _ in
            try await H.withClient(port: try #require(await service.listeningPort)) { client in
                await expectRPCError(.unimplemented, mentioning: "/RunnerProtocol/Nope") {
                    _ = try await client.unary(
                        request: ClientRequest(message: Google_Protobuf_Empty()),
                        descriptor: MethodDescriptor(fullyQualifiedService: "RunnerProtocol", method: "Nope"),
                        serializer: ProtobufSerializer<Google_Protobuf_Empty>(), deserializer: ProtobufDeserializer<RunnerStatus>(),
                        options: .defaults
                    ) { try $0.message }
                }
                let status = try await RunnerClient(wrapping: client).status2(.init())
                #expect(status.active == 0)
            }
        }
    }

    /// Fn's LB (grpc-go) opens as many streams on its one connection as the runner allows, and
    /// Fn's own runner allows any number. A server that advertises no limit still has NIOHTTP2's
    /// 100, and the 101st stream would end the connection with every call on it.
    @Test func moreThanAHundredEngagesAtOnceOnOneConnectionAreAllServed() async throws {
        let count = 150
        let name = "many-\(UInt32.random(in: 0...UInt32.max))-"
        let started = Mutex(0)
        for i in 0..<count { TestSignals.event("\(name)\(i).started").onFire { started.withLock { $0 += 1 } } }
        // Whatever happens, no held call outlives the test.
        defer { for i in 0..<count { TestSignals.event("\(name)\(i).go").fire() } }
        try await H.withRunner(totalMemoryMB: 4096) { c, _, _ in
            try await withThrowingTaskGroup(of: [RunnerMsg].self) { group in
                for i in 0..<count {
                    group.addTask { try await H.engage(c, model: H.model(memory: 16), body: Array("hold:\(name)\(i)".utf8)) }
                }
                // Each call holds until the test lets it go: all of them running means all of
                // their streams are open at once on the client's one connection.
                try await waitUntil(timeoutMillis: 30_000) { started.withLock { $0 } == count }
                for i in 0..<count { TestSignals.event("\(name)\(i).go").fire() }
                var served = 0
                for try await messages in group where messages.last?.finished.success == true { served += 1 }
                #expect(served == count)
            }
        }
    }

    /// The server, not a stream channel, gives back the flow-control window the client's
    /// bodies use. Bytes of a stream that the client then reset count against the connection's
    /// window too: unreturned, three abandoned 48 KiB bodies would leave the connection's 64 KiB
    /// window shut, and every later body on it would wait forever.
    @Test(.timeLimit(.minutes(1)))
    func bodiesOfStreamsTheClientAbandonedDoNotShutTheConnectionsWindow() async throws {
        struct Abandoned: Error {}
        try await H.withRunner { c, _, ended in
            for _ in 0..<3 {
                await #expect(throws: (any Error).self) {
                    try await c.engage { writer in
                        var first = ClientMsg()
                        first.try = TryCall.with { $0.modelsCallJson = H.model() }
                        try await writer.write(first)
                        var frame = ClientMsg()
                        frame.data = DataFrame.with { $0.data = Data(repeating: 0x61, count: 48 << 10) }
                        try await writer.write(frame)
                        throw Abandoned()
                    } onResponse: { response in
                        for try await _ in response.messages {}
                    }
                }
            }
            let input = Array("len".utf8) + [UInt8](repeating: 0x62, count: 200 << 10)
            for _ in 0..<3 {
                let answer = try await H.engage(c, body: input)
                #expect(H.text(answer) == "len:\(input.count)")
            }
            // A call's record is passed on after its answer.
            try await waitUntil(timeoutMillis: 30_000) { ended.records.withLock { $0.count } >= 3 }
            #expect(ended.records.withLock { $0.map(\.status) } == [.success, .success, .success], "the abandoned streams made no calls")
        }
    }

    @Test func anEngageWhoseDeadlinePassesEndsDeadlineExceededAndItsCallIsCancelled() async throws {
        try await H.withRunner { c, _, ended in
            // The deadline as the LB's grpc-go sends it; this client keeps no timer of its own,
            // so only the server can end the RPC.
            await expectRPCError(.deadlineExceeded, mentioning: "grpc-timeout") {
                _ = try await H.engage(c, body: Array("sleep:30000".utf8), metadata: ["grpc-timeout": "300m"])
            }
            for _ in 0..<500 where ended.records.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(ended.records.withLock { $0.first?.status } == .cancelled)
            #expect(try await c.status2(.init()).active == 0)
        }
    }

    @Test func aMalformedDeadlineIsRefusedNamingIt() async throws {
        try await H.withRunner { c, _, _ in
            await expectRPCError(.invalidArgument, mentioning: "grpc-timeout \"5 seconds\"") {
                _ = try await H.engage(c, body: Array("hi".utf8), metadata: ["grpc-timeout": "5 seconds"])
            }
        }
    }

    @Test func aMessageOverFourMiBEndsItsEngageWithResourceExhaustedAndTheNodeServesOn() async throws {
        try await H.withRunner { c, _, ended in
            await expectRPCError(.resourceExhausted, mentioning: "larger than the limit") {
                _ = try await H.engage(c, body: [UInt8](repeating: 0x61, count: 5 << 20), frameBytes: 5 << 20)
            }
            #expect(ended.records.withLock { $0.isEmpty }, "no call was made")
            let msgs = try await H.engage(c, body: Array("again".utf8))
            if case .finished(let f)? = msgs.last?.body { #expect(f.success) } else { Issue.record("\(msgs)") }
        }
    }

    @Test func aStreamThatEndsBeforeItsTryCallIsUnavailable() async throws {
        try await H.withRunner { c, _, _ in
            await expectRPCError(.unavailable, mentioning: "the stream ended before its TryCall") {
                try await c.engage { _ in } onResponse: { response in
                    for try await _ in response.messages {}
                }
            }
        }
    }

    @Test func aTryCallFollowedByAnotherTryCallIsFinishedWith400() async throws {
        try await H.withRunner { c, _, ended in
            let msgs = try await c.engage { writer in
                var first = ClientMsg()
                first.try = TryCall.with { $0.modelsCallJson = H.model() }
                try await writer.write(first)
                try await writer.write(first)
            } onResponse: { response in
                var out: [RunnerMsg] = []
                for try await m in response.messages { out.append(m) }
                return out
            }
            guard case .finished(let f)? = msgs.last?.body, msgs.count == 1 else { Issue.record("\(msgs)"); return }
            #expect(!f.success && f.errorCode == 400 && f.errorStr.contains("Protocol failure: expected ClientMsg_Data"), "\(f)")
            #expect(ended.records.withLock { $0.isEmpty }, "no call was made")
        }
    }

    @Test func aCompressedRequestIsRefusedAsUnimplemented() async throws {
        try await H.withServer { service, _, _ in
            var config = HTTP2ClientTransport.Posix.Config.defaults
            config.compression = .init(algorithm: .deflate, enabledAlgorithms: .all)
            try await H.withClient(port: try #require(await service.listeningPort), config: config) { client in
                await expectRPCError(.unimplemented, mentioning: "grpc-encoding deflate") {
                    _ = try await RunnerClient(wrapping: client).status2(.init())
                }
            }
        }
    }

    @Test func aRequestThatIsNotGRPCGetsAnHTTPErrorAndNothingElse() async throws {
        try await H.withServer { service, _, _ in
            let url = "http://127.0.0.1:\(try #require(await service.listeningPort))/RunnerProtocol/Status2"
            let curl = "curl -s --http2-prior-knowledge -o /dev/null -w '%{http_code}' "
            #expect(try await Shell.output(curl + "-X POST -H 'content-type: text/plain' -d x \(url)") == "415")
            #expect(try await Shell.output(curl + "-H 'content-type: application/grpc' \(url)") == "405")
        }
    }

    @Test func aPortInUseFailsTheStartNamingTheAddress() async throws {
        try await H.withServer { service, agent, _ in
            let port = try #require(await service.listeningPort)
            let second = GRPCRunnerService(host: "127.0.0.1", port: port, runner: PureRunner(agent: agent))
            await #expect {
                try await second.run()
            } throws: { error in
                (error as? RunnerError)?.message.contains("cannot listen on 127.0.0.1:\(port)") == true
            }
            #expect(await second.listeningPort == nil)
        }
    }

    @Test func stoppingLetsAnEngageInFlightFinishThenRefusesNewConnections() async throws {
        try await H.withServer { service, _, _ in
            let port = try #require(await service.listeningPort)
            try await H.withClient(port: port) { client in
                let c = RunnerClient(wrapping: client)
                async let holding = H.engage(c, body: Array("hold:stopping".utf8))
                await TestSignals.event("stopping.started").waitIgnoringCancellation()
                service.stop()
                TestSignals.event("stopping.go").fire()
                let held = try await holding
                #expect(held.contains { if case .data(let d)? = $0.body { d.data == Data("held".utf8) } else { false } }, "\(held)")
            }
            // The listener is closed: a new connection is refused.
            await #expect(throws: (any Error).self) {
                try await H.withClient(port: port) { client in
                    _ = try await RunnerClient(wrapping: client).status2(.init(), options: { var o = CallOptions.defaults; o.timeout = .seconds(5); o.waitForReady = false; return o }())
                }
            }
        }
    }
}
