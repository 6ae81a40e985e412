import Foundation
import Runner
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The test function reads request bodies in both framings an FDK must accept: Fn's agent sends
/// them chunked, fnrunner with a Content-Length.
@Suite struct HelloStreamFramingTests {
    typealias Function = HTTPStreamConnectionTests.Function

    /// One raw HTTP/1.1 exchange on a unix socket; the answer's body (the fixture always sends a
    /// Content-Length).
    final class RawClient {
        let fd: Int32
        init(_ path: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { dst in
                for (i, b) in path.utf8.enumerated() where i < dst.count - 1 { dst[i] = b }
            }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if rc != 0 { throw RunnerError.system("connect", errno: errno, "cannot reach \(path)") }
        }
        deinit { close(fd) }

        func exchange(_ raw: String) throws -> String {
            let bytes = Array(raw.utf8)
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { throw RunnerError.system("write", errno: errno, "request") }
                sent += n
            }
            var got: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let text = String(decoding: got, as: UTF8.self)
                if let split = text.range(of: "\r\n\r\n") {
                    let head = text[..<split.lowerBound].lowercased()
                    let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    let body = text[split.upperBound...]
                    if body.utf8.count >= length { return String(body) }
                }
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { throw RunnerError(.unavailable, "the function closed the connection: \(String(decoding: got, as: UTF8.self))") }
                got.append(contentsOf: chunk[0..<n])
            }
        }
    }

    @Test func aChunkedBodyWithExtensionsAndTrailersIsReadWhole() async throws {
        let f = try await Function()
        let c = try RawClient(f.dir + "/lsnr.sock")
        let answer = try c.exchange(
            "POST /call HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n!fra\r\n5\r\nming \r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n")
        #expect(answer == "framing chunked, 12 bytes")
        // The same connection goes on: the whole chunked request was consumed.
        #expect(try c.exchange("POST /call HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nWorld\r\n0\r\n\r\n") == "Hello World")
    }

    @Test func aContentLengthBodyAndAnEmptyChunkedBodyAreReadToo() async throws {
        let f = try await Function()
        let c = try RawClient(f.dir + "/lsnr.sock")
        #expect(try c.exchange("POST /call HTTP/1.1\r\nContent-Length: 12\r\n\r\n!framing abc") == "framing length, 12 bytes")
        #expect(try c.exchange("POST /call HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == "Hello World")
        #expect(try c.exchange("POST /call HTTP/1.1\r\n\r\n") == "Hello World")
    }

    @Test func theRunnerSendsTheBodyWithAContentLength() async throws {
        let f = try await Function()
        let c = try await f.connect()
        let request = FunctionRequest(callID: "01TEST", deadline: "2030-01-01T00:00:00Z", contentType: "text/plain", headers: [], body: Array("!framing".utf8))
        let r = try await c.call(request, deadlineNanos: MonotonicClock.nowNanos() + 60_000_000_000)
        #expect(String(decoding: r.body, as: UTF8.self) == "framing length, 8 bytes")
    }

    @Test func theFunctionGetsHeaderNamesInGosCanonicalForm() async throws {
        let f = try await Function()
        let c = try await f.connect()
        let request = FunctionRequest(
            callID: "01TEST", deadline: "2030-01-01T00:00:00Z", contentType: "text/plain", headers: [("x-foo-BAR", "1")],
            body: Array("!headers".utf8))
        let r = try await c.call(request, deadlineNanos: MonotonicClock.nowNanos() + 60_000_000_000)
        let lines = String(decoding: r.body, as: UTF8.self).split(separator: "\r\n").map(String.init)
        #expect(lines.contains("X-Foo-Bar: 1"), "\(lines)")
        #expect(lines.contains("Fn-Call-Id: 01TEST"), "\(lines)")
    }
}
