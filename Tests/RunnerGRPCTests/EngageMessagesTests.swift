import Foundation
import NIOCore
import Runner
import SwiftProtobuf
import Testing

@testable import RunnerGRPC

/// Engage's messages as the server writes and reads them by hand, against SwiftProtobuf's own
/// encoding of the same messages (what Fn's LB and grpc-swift's client read and write).
struct EngageMessagesTests {
    static let long = String(repeating: "é-long ", count: 40)

    static let answers: [EngageAnswer] = [
        .start(status: 200, headers: []),
        .start(status: 0, headers: [HTTPHeader(name: "", value: "")]),
        .start(status: 502, headers: [HTTPHeader(name: "content-type", value: "text/plain"), HTTPHeader(name: "x-é", value: long)]),
        .start(status: -1, headers: []),
        .start(status: Int(Int32.max) + 5, headers: (0..<40).map { HTTPHeader(name: "h\($0)", value: "v\($0)") }),
        .data([]),
        .data([7]),
        .data(ArraySlice(repeating: 0xff, count: 10 << 10)),
        .data(Array(UInt8(0)..<200)[100...]),
        .finished(EngageAnswer.Finished()),
        .finished(
            EngageAnswer.Finished(
                success: true, details: "01JCALL", errorCode: 0, errorStr: "", createdAt: "2026-12-07T02:40:00.123Z",
                startedAt: "2026-12-07T02:40:00.124Z", completedAt: "2026-12-07T02:40:00.125Z", executionDuration: 1_234_567,
                errorUser: false, image: "fn-test/hello:1")),
        .finished(
            EngageAnswer.Finished(
                success: false, details: "", errorCode: 503, errorStr: long, createdAt: "", startedAt: "", completedAt: "",
                executionDuration: -5, errorUser: true, image: "")),
        .finished(EngageAnswer.Finished(errorCode: -7)),
    ]

    /// The same answer as SwiftProtobuf's message.
    static func generated(_ answer: EngageAnswer) -> RunnerMsg {
        var msg = RunnerMsg()
        switch answer {
        case .start(let status, let headers):
            var meta = HttpRespMeta()
            meta.statusCode = Int32(clamping: status)
            meta.headers = headers.map { h in HttpHeader.with { $0.key = h.name; $0.value = h.value } }
            msg.resultStart = CallResultStart.with { $0.http = meta }
        case .data(let bytes):
            msg.data = DataFrame.with { $0.data = Data(bytes) }
        case .finished(let f):
            msg.finished = CallFinished.with {
                $0.success = f.success
                $0.details = f.details
                $0.errorCode = f.errorCode
                $0.errorStr = f.errorStr
                $0.createdAt = f.createdAt
                $0.startedAt = f.startedAt
                $0.completedAt = f.completedAt
                $0.executionDuration = f.executionDuration
                $0.errorUser = f.errorUser
                $0.image = f.image
            }
        }
        return msg
    }

    @Test(arguments: answers)
    func eachAnswerIsWrittenByteForByteAsSwiftProtobufWritesIt(_ answer: EngageAnswer) throws {
        let expected: [UInt8] = try Self.generated(answer).serializedBytes()
        var buffer = ByteBuffer()
        answer.write(to: &buffer)
        #expect(Array(buffer.readableBytesView) == expected)
        #expect(answer.encodedSize == expected.count)
        #expect(try RunnerMsg(serializedBytes: Array(buffer.readableBytesView)) == Self.generated(answer))
    }

    @Test func answersAreFramedOneAfterAnotherWithAZeroFlagAndTheirLength() throws {
        var buffer = ByteBuffer()
        for answer in Self.answers { answer.write(framed: &buffer) }
        var reader = GRPCWire.MessageReader()
        reader.append(buffer)
        var read: [RunnerMsg] = []
        while let message = try reader.next() { read.append(try RunnerMsg(serializedBytes: Array(message.readableBytesView))) }
        #expect(read == Self.answers.map(Self.generated))
    }

    static func bytes(_ msg: ClientMsg) throws -> ByteBuffer { ByteBuffer(bytes: try msg.serializedBytes() as [UInt8]) }

    static func tryCall(_ json: String, slot: String, extensions: [String: String] = [:]) -> ClientMsg {
        var m = ClientMsg()
        m.try = TryCall.with {
            $0.modelsCallJson = json
            $0.slotHashID = slot
            $0.extensions = extensions
        }
        return m
    }

    static func frame(_ data: [UInt8], eof: Bool) -> ClientMsg {
        var m = ClientMsg()
        m.data = DataFrame.with {
            $0.data = Data(data)
            $0.eof = eof
        }
        return m
    }

    @Test func theLoadBalancersTryCallsAndFramesAreReadWithoutSwiftProtobuf() throws {
        let cases: [(ClientMsg, EngageRequest)] = [
            (Self.tryCall(#"{"image":"x"}"#, slot: "abc"), .tryCall(modelJSON: #"{"image":"x"}"#, slotHash: "abc")),
            (Self.tryCall(Self.long, slot: ""), .tryCall(modelJSON: Self.long, slotHash: "")),
            (Self.tryCall("{}", slot: "s", extensions: ["k": "v", "k2": ""]), .tryCall(modelJSON: "{}", slotHash: "s")),
            (Self.tryCall("", slot: ""), .tryCall(modelJSON: "", slotHash: "")),
            (Self.frame(Array("World".utf8), eof: true), .data(ByteBuffer(string: "World"), eof: true)),
            (Self.frame(Array(repeating: 1, count: 300), eof: false), .data(ByteBuffer(bytes: Array(repeating: 1, count: 300)), eof: false)),
            (Self.frame([], eof: true), .data(ByteBuffer(), eof: true)),
            (Self.frame([], eof: false), .data(ByteBuffer(), eof: false)),
        ]
        for (msg, expected) in cases {
            let bytes = try Self.bytes(msg)
            #expect(EngageRequest.fast(bytes) == expected, "\(msg)")
            #expect(try EngageRequest.decode(bytes) == expected, "\(msg)")
        }
    }

    @Test func shapesTheLoadBalancerDoesNotSendAreReadAsSwiftProtobufReadsThem() throws {
        // A TryCall with an unknown field 9 (varint 5) after its JSON.
        let unknown = ByteBuffer(bytes: [0x0a, 0x05, 0x0a, 0x01, 0x7b, 0x48, 0x05])
        #expect(EngageRequest.fast(unknown) == nil)
        #expect(try EngageRequest.decode(unknown) == .tryCall(modelJSON: "{", slotHash: ""))
        // A TryCall and then a DataFrame in one ClientMsg: the oneof's last case wins.
        var both = try Self.bytes(Self.tryCall("{}", slot: "a"))
        var frame = try Self.bytes(Self.frame([1, 2], eof: true))
        both.writeBuffer(&frame)
        #expect(EngageRequest.fast(both) == nil)
        #expect(try EngageRequest.decode(both) == .data(ByteBuffer(bytes: [1, 2]), eof: true))
        // A DataFrame whose eof came twice, the last false.
        let twice = ByteBuffer(bytes: [0x12, 0x04, 0x10, 0x01, 0x10, 0x00])
        #expect(EngageRequest.fast(twice) == nil)
        #expect(try EngageRequest.decode(twice) == .data(ByteBuffer(), eof: false))
        // A ClientMsg with no body.
        #expect(try EngageRequest.decode(ByteBuffer()) == .empty)
    }

    @Test(arguments: [
        [0x0a, 0x05, 0x0a, 0x03, 0x7b],  // the JSON cut short
        [0x0a, 0x03, 0x0a, 0x01, 0xff],  // not UTF-8
        [0x12, 0x02, 0x10],  // a varint cut short
        [0x0a],  // a length missing
        [0x0b],  // a group never ended
    ] as [[UInt8]])
    func bytesThatAreNotAClientMsgFailAsSwiftProtobufFailsThem(_ bytes: [UInt8]) {
        #expect(EngageRequest.fast(ByteBuffer(bytes: bytes)) == nil)
        #expect((try? ClientMsg(serializedBytes: bytes)) == nil, "SwiftProtobuf refuses it too")
        #expect(throws: GRPCWire.Failure.self) { _ = try EngageRequest.decode(ByteBuffer(bytes: bytes)) }
    }

    @Test(arguments: [UInt64(0), 1, 127, 128, 16_383, 16_384, UInt64(UInt32.max), UInt64.max])
    func varintsReadBackWhatWasWrittenInTheirOwnSize(_ v: UInt64) {
        var buffer = ByteBuffer()
        ProtoWire.writeVarint(v, to: &buffer)
        #expect(buffer.readableBytes == ProtoWire.varintSize(v))
        var reader = ProtoWire.Reader(buffer)
        #expect(reader.varint() == v)
        #expect(reader.isAtEnd)
    }
}
