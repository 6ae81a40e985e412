import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Testing

@testable import RunnerAPI

/// The server's codec converts every request head as NIOHTTPTypesHTTP1's server codec does,
/// whatever form its target takes, and writes every answer as that codec and NIOHTTP1's
/// response encoder behind it write it, byte for byte: the same connection is run through
/// the library's pipeline and through ours, and what each sends is compared.
struct HTTP1ServerCodecTests {
    static func head(_ method: HTTPMethod, _ target: String) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target)
        head.headers.add(name: "Host", value: "127.0.0.1:8080")
        head.headers.add(name: "Cookie", value: "a=1; b=2")
        head.headers.add(name: "X-Thing", value: "one")
        head.headers.add(name: "x-thing", value: "two")
        return head
    }

    @Test(arguments: [
        "/invoke/01ABC", "/t/app/x?q=1&r=%20", "/", "//other/path", "/a b", "/?", "http://host:8080/p?q=1", "HTTP://H",
        "*", "example.com:443", "",
    ])
    func requestHeadsConvertAsTheLibrarysCodecConvertsThem(target: String) throws {
        for method in [HTTPMethod.POST, .GET, .OPTIONS, .CONNECT] {
            let head = Self.head(method, target)
            #expect(try HTTP1ServerCodec.request(head) == HTTPRequest(head, secure: false, splitCookie: false), "\(method) \(target)")
        }
    }

    @Test func aMethodHTTPTypesRefuseIsAnErrorAsWithTheLibrarysCodec() {
        let head = Self.head(.RAW(value: "NOT A METHOD"), "/invoke/01ABC")
        #expect(throws: (any Error).self) { try HTTPRequest(head, secure: false, splitCookie: false) }
        #expect(throws: (any Error).self) { try HTTP1ServerCodec.request(head) }
    }

    // MARK: the library's pipeline and ours, side by side

    /// A server connection's HTTP/1 handlers as Hummingbird sets them up (the library's decoder,
    /// encoder and codec), or as `FnHTTP1Channel` does (the decoder and ours).
    static func connection(ours: Bool, limits: HTTP1Channel.Configuration.DecoderConfiguration = .init()) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let pipeline = channel.pipeline.syncOperations
        if ours {
            try FnHTTP1Channel.addServerCodec(pipeline, decoder: limits)
        } else {
            // As Hummingbird's HTTP1Channel sets it up.
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: FnHTTP1Channel.decoderLimits(limits))
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
        }
        return channel
    }

    /// How an answer's parts are written: each flushed, or only the end.
    enum Flushing: CaseIterable { case eachPart, atEnd }

    /// One request's answer: its parts in order.
    typealias Answer = [HTTPResponsePart]

    /// What a connection sends when `requests` arrive (in one read) and `answers` are written,
    /// the request parts it passed on, and how each answer part's write ended, in the order
    /// they ended.
    static func run(ours: Bool, _ requests: String, _ answers: [Answer], _ flushing: Flushing) throws -> (
        sent: [UInt8], received: [HTTPRequestPart], writes: [String]
    ) {
        let channel = try connection(ours: ours)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: requests))
        var received: [HTTPRequestPart] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) { received.append(part) }
        let writes = WriteLog()
        for (a, answer) in answers.enumerated() {
            for (p, part) in answer.enumerated() {
                let promise = channel.eventLoop.makePromise(of: Void.self)
                promise.futureResult.whenComplete { result in
                    switch result {
                    case .success: writes.add("\(a).\(p) ok")
                    case .failure(let error): writes.add("\(a).\(p) \(error)")
                    }
                }
                channel.write(part, promise: promise)
                if flushing == .eachPart { channel.flush() }
            }
            channel.flush()
        }
        var sent: [UInt8] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { Issue.record("a file region was written"); continue }
            sent += buffer.readableBytesView
        }
        return (sent, received, writes.entries)
    }

    final class WriteLog: @unchecked Sendable {
        var entries: [String] = []
        func add(_ entry: String) { entries.append(entry) }
    }

    static func expectSame(_ requests: String, _ answers: [Answer], sourceLocation: SourceLocation = #_sourceLocation) throws {
        for flushing in Flushing.allCases {
            let library = try run(ours: false, requests, answers, flushing)
            let ours = try run(ours: true, requests, answers, flushing)
            #expect(
                String(decoding: ours.sent, as: UTF8.self) == String(decoding: library.sent, as: UTF8.self), "\(flushing)",
                sourceLocation: sourceLocation)
            #expect(ours.received == library.received, "\(flushing)", sourceLocation: sourceLocation)
            #expect(ours.writes == library.writes, "\(flushing)", sourceLocation: sourceLocation)
        }
    }

    static func response(_ code: Int, _ fields: [(String, String)] = [], reason: String? = nil) -> HTTPResponsePart {
        var headers = HTTPFields()
        for (name, value) in fields { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        let status = reason.map { HTTPResponse.Status(code: code, reasonPhrase: $0) } ?? HTTPResponse.Status(code: code)
        return .head(HTTPResponse(status: status, headerFields: headers))
    }

    static func body(_ text: String) -> HTTPResponsePart { .body(ByteBuffer(string: text)) }

    static let get = "GET /v2/apps HTTP/1.1\r\nHost: a\r\n\r\n"

    @Test(arguments: [
        [("Content-Length", "5")], [], [("Transfer-Encoding", "chunked")], [("transfer-encoding", "gzip"), ("Content-Length", "5")],
        [("Transfer-Encoding", "gzip")], [("content-length", "5"), ("X-A", "1"), ("x-a", "2"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
    ])
    func answersWithAndWithoutALengthAreFramedAsByTheLibrary(fields: [(String, String)]) throws {
        for code in [200, 201, 204, 206, 304, 404, 418, 500, 599, 999] {
            try Self.expectSame(Self.get, [[Self.response(code, fields), Self.body("hello"), .end(nil)]])
            try Self.expectSame(Self.get, [[Self.response(code, fields), .end(nil)]])
        }
    }

    @Test func everyStatusCodeHasTheLibrarysStatusLine() throws {
        for code in 100...999 where code != 101 {
            try Self.expectSame(Self.get, [[Self.response(code, [("Content-Length", "0")]), .end(nil)]])
        }
        try Self.expectSame(Self.get, [[Self.response(200, [("Content-Length", "0")], reason: "Fine"), .end(nil)]])
        try Self.expectSame(Self.get, [[Self.response(599, [("Content-Length", "0")], reason: "Odd One"), .end(nil)]])
    }

    @Test func chunkedAnswersCarryTheirChunksEmptyOnesAndTrailersAsWithTheLibrary() throws {
        var trailers = HTTPFields()
        trailers[HTTPField.Name("X-Sum")!] = "abc"
        let large = String(repeating: "x", count: HTTP1ServerCodec.copyLimit + 1)
        try Self.expectSame(Self.get, [[Self.response(200), Self.body("one"), Self.body(""), Self.body("two"), .end(nil)]])
        try Self.expectSame(Self.get, [[Self.response(200), Self.body("one"), .end(trailers)]])
        try Self.expectSame(Self.get, [[Self.response(200), .end(HTTPFields())]])
        try Self.expectSame(Self.get, [[Self.response(200), Self.body("a"), .body(ByteBuffer(string: large)), Self.body("b"), .end(nil)]])
        try Self.expectSame(
            Self.get, [[Self.response(200, [("Content-Length", "\(large.count + 1)")]), .body(ByteBuffer(string: large)), Self.body("b"), .end(trailers)]])
    }

    @Test func answersToHeadAndConnectSendNoBodyAndFailItsWritesAsWithTheLibrary() throws {
        let head = "HEAD /v2/apps HTTP/1.1\r\nHost: a\r\n\r\n"
        let connect = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"
        for request in [head, connect] {
            try Self.expectSame(request, [[Self.response(200, [("Content-Length", "5")]), Self.body("hello"), .end(nil)]])
            try Self.expectSame(request, [[Self.response(200), Self.body("hello"), .end(nil)]])
            try Self.expectSame(request, [[Self.response(404, [("Transfer-Encoding", "chunked")]), .end(nil)]])
        }
    }

    @Test func pipelinedRequestsAndInformationalHeadsPairWithTheirAnswersAsWithTheLibrary() throws {
        let head = "HEAD /a HTTP/1.1\r\nHost: a\r\n\r\n"
        let post = "POST /invoke/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        try Self.expectSame(
            head + Self.get + post,
            [
                [Self.response(200, [("Content-Length", "5")]), Self.body("hello"), .end(nil)],
                [Self.response(100), Self.response(200), Self.body("x"), .end(nil)],
                [Self.response(103, [("Link", "</s.css>")]), Self.response(201, [("Content-Length", "2")]), Self.body("ok"), .end(nil)],
            ])
        try Self.expectSame(Self.get + head, [[Self.response(200), Self.body("x"), .end(nil)], [Self.response(200), Self.body("x"), .end(nil)]])
    }

    @Test func theDecoderKeepsHummingbirdsHeaderLimits() throws {
        let big = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "v", count: 300))\r\n\r\n"
        let limited = try Self.connection(ours: true, limits: .init(maxHeaderFieldSize: 100))
        defer { _ = try? limited.finish() }
        #expect(throws: (any Error).self) { try limited.writeInbound(ByteBuffer(string: big)) }
        let open = try Self.connection(ours: true)
        defer { _ = try? open.finish() }
        try open.writeInbound(ByteBuffer(string: big))
        guard case .head(let request)? = try open.readInbound(as: HTTPRequestPart.self) else {
            Issue.record("no request head")
            return
        }
        #expect(request.headerFields[HTTPField.Name("X-Big")!]?.count == 300)
    }

    @Test func aWholeAnswerLeavesAsOneWrite() throws {
        let channel = try Self.connection(ours: true)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(ByteBuffer(string: Self.get))
        channel.write(Self.response(200, [("Content-Length", "5")]), promise: nil)
        channel.write(Self.body("hello"), promise: nil)
        channel.writeAndFlush(HTTPResponsePart.end(nil), promise: nil)
        let first = try channel.readOutbound(as: IOData.self)
        #expect(try channel.readOutbound(as: IOData.self) == nil)
        guard case .byteBuffer(let buffer)? = first else {
            Issue.record("no buffer written")
            return
        }
        #expect(String(buffer: buffer) == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    }

    /// What reaches the channel from the codec: writes (their sizes), flushes and closes.
    final class OutboundRecorder: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = IOData
        var events: [String] = []
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            events.append("write \(unwrapOutboundIn(data).readableBytes)")
            context.write(data, promise: promise)
        }
        func flush(context: ChannelHandlerContext) {
            events.append("flush")
            context.flush()
        }
        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            events.append("close \(mode)")
            context.close(mode: mode, promise: promise)
        }
    }

    @Test func heldAnswerBytesArePassedOnBeforeACloseWithTheirWrite() throws {
        for mode in [CloseMode.all, .output] {
            let channel = EmbeddedChannel()
            let recorder = OutboundRecorder()
            try channel.pipeline.syncOperations.addHandler(recorder)
            try FnHTTP1Channel.addServerCodec(channel.pipeline.syncOperations, decoder: .init())
            try channel.writeInbound(ByteBuffer(string: Self.get))
            channel.write(Self.response(200, [("Content-Length", "5")]), promise: nil)
            #expect(recorder.events.isEmpty)
            channel.close(mode: mode, promise: nil)
            #expect(recorder.events == ["write 38", "close \(mode)"])
            _ = try? channel.finish()
        }
    }
}
