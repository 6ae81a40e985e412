import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOPosix
import LoopExecutors
import Runner
import RunnerGRPC

/// `fnrunner-grpc-bench HOST:PORT IMAGE [CALLS] [CONCURRENCY] [--refused]`: hot calls through
/// Engage, as Fn's load balancer makes them, against a running `fnrunner serve --grpc-listen`;
/// prints calls/s and latency percentiles. `scripts/bench` runs it next to wrk on `POST /invoke`.
///
/// `--refused`: every TryCall carries a memory limit out of range, which the runner refuses
/// as it reads the model, before the agent (400 in `finished`). Those calls cost serve only the
/// gRPC stream and Engage's messages: the floor under any Engage call, whatever the agent does.
///
/// The client runs on one event loop, its calls' tasks too, as serve's gRPC side does: on the
/// cooperative pool each message of a call woke a thread, and the client's own CPU (on the same
/// cores as the server) was most of what an Engage call cost.
@main
struct GRPCBench {
    static func main() async throws {
        let refused = CommandLine.arguments.contains("--refused")
        let args = CommandLine.arguments.filter { $0 != "--refused" }
        guard args.count >= 3, let colon = args[1].lastIndex(of: ":"), let port = Int(args[1][args[1].index(after: colon)...]) else {
            FileHandle.standardError.write(Data("usage: fnrunner-grpc-bench HOST:PORT IMAGE [CALLS] [CONCURRENCY] [--refused]\n".utf8))
            exit(2)
        }
        let host = String(args[1][..<colon])
        let image = args[2]
        let calls = args.count > 3 ? Int(args[3]) ?? 2000 : 2000
        let concurrency = max(1, args.count > 4 ? Int(args[4]) ?? 1 : 1)
        // As Fn's LB sends a call: its id, made by the LB, in the model, and the slot hash
        // (a SHA-256 of the fn's settings in hex; here only its shape matters, as the node
        // keys its slot queue by it).
        let model: @Sendable (String) -> String = { id in
            """
            {"id":"\(id)","image":"\(image)","type":"sync","memory":\(refused ? -1 : 64),"timeout":30,"idle_timeout":30,"method":"POST",\
            "url":"http://bench/invoke/bench","app_id":"bench","app_name":"bench","fn_id":"bench","headers":{}}
            """
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await withTaskExecutorPreference(EventLoopTaskExecutor(group.next())) {
                try await run(
                    host: host, port: port, model: model, expected: refused ? 400 : nil, calls: calls, concurrency: concurrency, group: group)
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    /// `expected`: the error code every call's `finished` must carry; nil: every call succeeds.
    static func run(
        host: String, port: Int, model: @escaping @Sendable (String) -> String, expected: Int32?, calls: Int, concurrency: Int,
        group: MultiThreadedEventLoopGroup
    ) async throws {
        try await withGRPCClient(
            transport: try .http2NIOPosix(
                target: .ipv4(address: host, port: port), transportSecurity: .plaintext, eventLoopGroup: group)
        ) { grpc in
            let client = RunnerProtocol.Client(wrapping: grpc)
            let slotHash = String(repeating: "5e", count: 32)
            @Sendable func once() async throws -> UInt64 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let ok = try await client.engage { writer in
                    var first = ClientMsg()
                    first.try = TryCall.with {
                        $0.modelsCallJson = model(CallID.make())
                        $0.slotHashID = slotHash
                    }
                    try await writer.write(first)
                    var frame = ClientMsg()
                    frame.data = DataFrame.with {
                        $0.data = Data("World".utf8)
                        $0.eof = true
                    }
                    try await writer.write(frame)
                } onResponse: { response in
                    var finished: CallFinished?
                    for try await m in response.messages { if case .finished(let f)? = m.body { finished = f } }
                    return finished.map { expected == nil ? $0.success : !$0.success && $0.errorCode == expected }
                }
                guard ok == true else {
                    throw RPCError(code: .internalError, message: expected.map { "a call did not end with error \($0)" } ?? "a call did not succeed")
                }
                return DispatchTime.now().uptimeNanoseconds - t0
            }
            /// Worker `w`'s part of `total` calls spread over the workers.
            @Sendable func share(_ total: Int, _ w: Int) -> Int { total / concurrency + (w < total % concurrency ? 1 : 0) }
            // Warm at the run's concurrency: the containers it needs exist before it is timed.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for w in 0..<concurrency {
                    group.addTask { for _ in 0..<share(50, w) { _ = try await once() } }
                }
                try await group.waitForAll()
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let samples = try await withThrowingTaskGroup(of: [UInt64].self) { group in
                for w in 0..<concurrency {
                    group.addTask {
                        var out: [UInt64] = []
                        for _ in 0..<share(calls, w) { out.append(try await once()) }
                        return out
                    }
                }
                var all: [UInt64] = []
                for try await part in group { all += part }
                return all.sorted()
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            func ms(_ q: Double) -> String {
                String(format: "%.3f", Double(samples[min(samples.count - 1, Int((q * Double(samples.count)).rounded(.up)) - 1)]) / 1e6)
            }
            print(
                "engage: \(samples.count) calls, concurrency \(concurrency): \(String(format: "%.0f", Double(samples.count) / seconds)) calls/s, "
                    + "p50 \(ms(0.5)) ms, p90 \(ms(0.9)) ms, p99 \(ms(0.99)) ms")
        }
    }
}
