import Foundation
import RunnerOS
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 client for tests against a live server on loopback: one request per
/// connection, the whole answer read until the server closes. Its blocking socket I/O runs on a
/// thread of its own (`TestThread`): on a cooperative-pool thread it would starve the server it
/// waits for, and on the runner's `BlockingThread` the containers other tests start meanwhile.
struct HTTPTestClient: Sendable {
    let port: Int

    struct Answer: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var message: String? { json["message"] as? String }
    }

    func send(_ method: String, _ path: String, body: [UInt8] = [], headers: [(String, String)] = []) async throws -> Answer {
        let port = self.port
        return try await TestThread.run {
            let a = try LoopbackHTTP.exchange(port: port, method, path, body: body, headers: headers)
            return Answer(status: a.status, headers: a.headers, body: a.body)
        }
    }

    /// Polls `/metrics` until the node has `count` hot containers in `state` (Fn's names: wait,
    /// start, idle, paused, busy): how a test knows a container froze, or a call waits, before
    /// it acts on that, whatever the machine's load.
    func waitForContainers(_ state: String, count: Int, timeoutMillis: Int = 30_000) async throws {
        try await pollUntil(timeoutMillis: timeoutMillis) {
            try await send("GET", "/metrics").text.contains("fn_containers{state=\"\(state)\"} \(count)")
        }
    }

    func json(_ method: String, _ path: String, _ object: Any, headers: [(String, String)] = []) async throws -> Answer {
        let body = Array(try JSONSerialization.data(withJSONObject: object))
        return try await send(method, path, body: body, headers: [("Content-Type", "application/json")] + headers)
    }

}
