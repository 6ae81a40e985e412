import NIOCore
import Testing

@testable import RunnerGRPC

/// gRPC's message framing, status message encoding and deadlines, as the server reads and
/// writes them.
struct GRPCWireTests {
    func framed(_ payloads: [[UInt8]], flag: UInt8 = 0) -> [UInt8] {
        payloads.flatMap { p in [flag] + withUnsafeBytes(of: UInt32(p.count).bigEndian, Array.init) + p }
    }

    func messages(_ reader: inout GRPCWire.MessageReader) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        while let m = try reader.next() { out.append(Array(m.readableBytesView)) }
        return out
    }

    @Test func messagesAreWholeHoweverTheFramesCutThem() throws {
        let payloads: [[UInt8]] = [Array("first".utf8), [], Array(repeating: 7, count: 300)]
        let bytes = framed(payloads)
        for cut in 1..<bytes.count {
            var reader = GRPCWire.MessageReader()
            reader.append(ByteBuffer(bytes: bytes[..<cut]))
            var got = try messages(&reader)
            reader.append(ByteBuffer(bytes: bytes[cut...]))
            got += try messages(&reader)
            #expect(got == payloads, "cut at \(cut)")
            #expect(!reader.hasPartialMessage)
        }
    }

    @Test func aStreamCutInsideAMessageHasAPartialMessage() throws {
        var reader = GRPCWire.MessageReader()
        reader.append(ByteBuffer(bytes: framed([Array("whole".utf8)]).dropLast()))
        #expect(try reader.next() == nil)
        #expect(reader.hasPartialMessage)
    }

    @Test func aCompressedMessageIsRefusedAsUnimplemented() {
        var reader = GRPCWire.MessageReader()
        reader.append(ByteBuffer(bytes: framed([[1, 2]], flag: 1)))
        #expect(throws: GRPCWire.Failure(.unimplemented, "compressed messages are not accepted (flag 1); send them with grpc-encoding identity")) {
            _ = try reader.next()
        }
    }

    @Test func anOversizedMessageIsRefusedBeforeItsBytesArrive() {
        var reader = GRPCWire.MessageReader(maxMessageBytes: 10)
        reader.append(ByteBuffer(bytes: [0, 0, 0, 0, 11]))
        #expect(throws: GRPCWire.Failure(.resourceExhausted, "message of 11 bytes is larger than the limit of 10")) { _ = try reader.next() }
    }

    @Test func statusMessagesArePercentEncodedBeyondPrintableASCII() {
        #expect(GRPCWire.percentEncoded("plain text: ok") == "plain text: ok")
        #expect(GRPCWire.percentEncoded("100% é\n") == "100%25 %C3%A9%0A")
    }

    @Test(arguments: [
        ("100m", Int64(100_000_000)), ("1H", 3_600_000_000_000), ("2M", 120_000_000_000), ("3S", 3_000_000_000),
        ("5u", 5_000), ("7n", 7), ("99999999H", Int64.max),
    ])
    func deadlinesAreReadInEveryUnit(_ value: String, _ nanos: Int64) throws {
        #expect(try GRPCWire.timeoutNanos(value) == nanos)
    }

    @Test(arguments: ["", "m", "123456789S", "10x", "-5S", "5 S"])
    func malformedDeadlinesAreRefused(_ value: String) {
        #expect(throws: GRPCWire.Failure.self) { _ = try GRPCWire.timeoutNanos(value) }
    }

    @Test func noDeadlineIsNone() throws {
        #expect(try GRPCWire.timeoutNanos(nil) == nil)
    }

    @Test func aFlowControlWindowIsToppedUpOnceHalfOfItIsUsedAndNeverPastItsTarget() {
        let target = 65_535
        let increment = { RunnerConnectionHandler.windowIncrement(size: $0, target: target) }
        #expect(increment(target) == nil)
        #expect(increment(target + 10) == nil)
        #expect(increment(40_000) == nil, "less than half used")
        #expect(increment(32_768) == nil)
        #expect(increment(32_767) == 32_768)
        #expect(increment(0) == target)
        #expect(increment(-100) == target + 100, "a window below zero gets back what it lacks")
        #expect(increment(-Int(Int32.max)) == Int(Int32.max), "an increment fits in 31 bits")
    }
}
