import Foundation
import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// scripts/otlp-receiver for one test: an OTLP/HTTP trace receiver on 127.0.0.1 (an ephemeral
/// port, nothing sent anywhere else) that writes every span it is sent to a file, as a
/// collector would receive them.
public final class OTLPReceiver: @unchecked Sendable {
    /// One received span, as the receiver wrote it.
    public struct Span: Sendable {
        public var traceID, spanID, parentID, name: String
        public var start, end: UInt64
        public var attributes: [String: String]
        public var intAttributes: [String: Int]
        public var error: Bool
        public var service: String?
    }

    public let endpoint: String
    public let file: String
    private let process: Subprocess

    /// Starts a receiver writing beside the test's state directory (`name` keeps two apart).
    public init(_ env: TestEnvironment, name: String = "spans") async throws {
        file = env.stateDirectory + "-\(name).jsonl"
        unlink(file)
        let port = try Host.freeLoopbackPort()
        process = try Subprocess([
            "/usr/bin/env", "python3", Fixtures.packageRoot + "/scripts/otlp-receiver", "serve", "--port", "\(port)", "--out", file,
        ])
        endpoint = "http://127.0.0.1:\(port)"
        let process = process
        try await waitUntil(timeoutMillis: helperStartMillis) { process.stdout.contains("\(port)") || kill(process.pid, 0) != 0 }
        guard kill(process.pid, 0) == 0 else {
            throw RunnerError(.unavailable, "the OTLP receiver did not start: \(process.stderr)", step: "test")
        }
    }

    deinit {
        process.signal(SIGTERM)
        _ = process.wait()
        unlink(file)
    }

    /// The spans received so far.
    public var spans: [Span] {
        ((try? FileSystem.read(file)) ?? "").split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            let attributes = o["attributes"] as? [String: Any] ?? [:]
            return Span(
                traceID: o["trace_id"] as? String ?? "", spanID: o["span_id"] as? String ?? "",
                parentID: o["parent_span_id"] as? String ?? "", name: o["name"] as? String ?? "",
                start: (o["start_ns"] as? NSNumber)?.uint64Value ?? 0, end: (o["end_ns"] as? NSNumber)?.uint64Value ?? 0,
                attributes: attributes.compactMapValues { $0 as? String }, intAttributes: attributes.compactMapValues { $0 as? Int },
                error: o["status_code"] as? Int == 2, service: o["service"] as? String)
        }
    }

    /// The span of the call `id` (named "fn call", with `fn.call.id`).
    public func call(_ id: String) -> Span? {
        spans.first { $0.name == "fn call" && $0.attributes["fn.call.id"] == id }
    }

    /// `span`'s children, in the order they started.
    public static func children(of span: Span, in spans: [Span]) -> [Span] {
        spans.filter { $0.parentID == span.spanID && $0.traceID == span.traceID }.sorted { $0.start < $1.start }
    }
}
