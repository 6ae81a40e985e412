import HTTPTypes
import NIOCore
import NIOHTTP1

/// HTTP types answers as HTTP/1.1 bytes, framed as NIOHTTP1's `HTTPResponseEncoder` frames
/// them behind NIOHTTPTypesHTTP1's conversion (automatic framing headers, no body after a
/// HEAD or CONNECT request, 1xx heads answering no request), written straight from the
/// `HTTPFields` instead of through an `HTTPHeaders` copy that is then searched and edited.
///
/// The bytes are the library pair's, byte for byte (`HTTP1ServerCodecTests` compares them):
/// - the status line is HTTP/1.1, the code, and NIO's reason phrase for it;
/// - a response that may have a body keeps its Content-Length and loses any
///   Transfer-Encoding, or, without a Content-Length, gets `transfer-encoding: chunked`
///   last and a chunked body;
/// - one that may not (1xx, 204, 304, an answer to CONNECT) loses both;
/// - an answer to HEAD keeps its framing headers but sends no body.
struct HTTP1ResponseEncoder {
    /// Methods of the requests whose answers have not begun, oldest first (more than one only
    /// when a client pipelines).
    private var methods: [HTTPMethod] = []
    /// The answer being written is chunked.
    private(set) var isChunked = false
    /// The answer being written answers HEAD or CONNECT: its body is not sent.
    private(set) var suppressesBody = false

    /// A request arrived; the answer to it is the next head that is not a 1xx one.
    mutating func requestArrived(_ method: HTTPMethod) { methods.append(method) }

    /// Appends `response`'s head.
    mutating func head(_ response: HTTPResponse, into buffer: inout ByteBuffer) {
        let code = response.status.code
        var answersConnect = false
        // A 1xx head (but 101) comes before the final one, which is the request's answer.
        if !((100..<200).contains(code) && code != 101), !methods.isEmpty {
            let method = methods.removeFirst()
            suppressesBody = method == .HEAD || method == .CONNECT
            answersConnect = method == .CONNECT
        }
        let status = HTTPResponseStatus(statusCode: code, reasonPhrase: response.status.reasonPhrase)
        let mayHaveBody = !answersConnect && status.mayHaveResponseBody
        let hasLength = mayHaveBody && response.headerFields.contains { $0.name == .contentLength }
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for field in response.headerFields {
            if field.name == .transferEncoding || (!mayHaveBody && field.name == .contentLength) { continue }
            Self.write(field, into: &buffer)
        }
        let chunked = mayHaveBody && !hasLength
        if chunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        buffer.writeStaticString("\r\n")
        isChunked = chunked && !suppressesBody
    }

    /// Appends what goes before a body chunk of `count` bytes (a chunk's size line).
    func bodyPrefix(count: Int, into buffer: inout ByteBuffer) {
        guard isChunked && count > 0 else { return }
        buffer.writeString(String(count, radix: 16))
        buffer.writeStaticString("\r\n")
    }

    /// Appends what goes after a body chunk of `count` bytes.
    func bodySuffix(count: Int, into buffer: inout ByteBuffer) {
        if isChunked && count > 0 { buffer.writeStaticString("\r\n") }
    }

    /// Appends the answer's end: the last chunk and the trailers when chunked, else nothing.
    mutating func end(_ trailers: HTTPFields?, into buffer: inout ByteBuffer) {
        if isChunked {
            buffer.writeStaticString("0\r\n")
            for field in trailers ?? [:] { Self.write(field, into: &buffer) }
            buffer.writeStaticString("\r\n")
        }
        isChunked = false
        suppressesBody = false
    }

    private static func write(_ field: HTTPField, into buffer: inout ByteBuffer) {
        buffer.writeString(field.name.rawName)
        buffer.writeStaticString(": ")
        buffer.writeString(field.value)
        buffer.writeStaticString("\r\n")
    }
}
