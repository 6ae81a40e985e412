import NIOCore

/// Protocol Buffers' wire format, the little of it Engage's own messages need: varints,
/// length-delimited fields, and skipping what a reader does not know. proto3 rules: a scalar
/// field at its default value is not written; fields go out in field-number order (as
/// SwiftProtobuf writes them, which the tests compare byte for byte).
enum ProtoWire {
    static let varint: UInt64 = 0
    static let fixed64: UInt64 = 1
    static let lengthDelimited: UInt64 = 2
    static let fixed32: UInt64 = 5

    static func varintSize(_ v: UInt64) -> Int {
        // 7 bits a byte; 0 still takes one.
        max(1, (64 - v.leadingZeroBitCount + 6) / 7)
    }

    static func tagSize(_ field: UInt64) -> Int { varintSize(field << 3) }

    /// A length-delimited field of `length` bytes, tag and length included.
    static func fieldSize(_ field: UInt64, length: Int) -> Int { tagSize(field) + varintSize(UInt64(length)) + length }

    /// An int32 or int64 field: negative values take ten bytes (sign-extended to 64 bits).
    static func intFieldSize(_ field: UInt64, _ v: Int64) -> Int { v == 0 ? 0 : tagSize(field) + varintSize(UInt64(bitPattern: v)) }

    static func stringFieldSize(_ field: UInt64, _ s: String) -> Int { s.isEmpty ? 0 : fieldSize(field, length: s.utf8.count) }

    static func boolFieldSize(_ field: UInt64, _ b: Bool) -> Int { b ? tagSize(field) + 1 : 0 }

    static func writeVarint(_ v: UInt64, to out: inout ByteBuffer) {
        var v = v
        while v >= 0x80 {
            out.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.writeInteger(UInt8(v))
    }

    static func writeTag(_ field: UInt64, _ wireType: UInt64, to out: inout ByteBuffer) {
        writeVarint(field << 3 | wireType, to: &out)
    }

    /// The tag and length of a length-delimited field; its bytes follow.
    static func writeHeader(_ field: UInt64, length: Int, to out: inout ByteBuffer) {
        writeTag(field, lengthDelimited, to: &out)
        writeVarint(UInt64(length), to: &out)
    }

    static func writeInt(_ field: UInt64, _ v: Int64, to out: inout ByteBuffer) {
        guard v != 0 else { return }
        writeTag(field, varint, to: &out)
        writeVarint(UInt64(bitPattern: v), to: &out)
    }

    static func writeBool(_ field: UInt64, _ b: Bool, to out: inout ByteBuffer) {
        guard b else { return }
        writeTag(field, varint, to: &out)
        out.writeInteger(UInt8(1))
    }

    static func writeString(_ field: UInt64, _ s: String, to out: inout ByteBuffer) {
        guard !s.isEmpty else { return }
        writeHeader(field, length: s.utf8.count, to: &out)
        out.writeString(s)
    }

    /// Reads fields off a message's bytes. Every method returns nil on bytes that are not a
    /// well-formed message (cut short, a varint over ten bytes, a group, a length past the end).
    struct Reader {
        private var bytes: ByteBuffer

        init(_ bytes: ByteBuffer) { self.bytes = bytes }

        var isAtEnd: Bool { bytes.readableBytes == 0 }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while shift < 64, let byte = bytes.readInteger(as: UInt8.self) {
                value |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }

        /// The next field's number and wire type.
        mutating func tag() -> (field: UInt64, wireType: UInt64)? {
            guard let t = varint(), t >> 3 != 0 else { return nil }
            return (t >> 3, t & 7)
        }

        /// A length-delimited field's bytes.
        mutating func delimited() -> ByteBuffer? {
            guard let n = varint(), n <= UInt64(bytes.readableBytes) else { return nil }
            return bytes.readSlice(length: Int(n))
        }

        /// Passes over a field of the given wire type; false when it cannot be (a group, or bytes
        /// cut short).
        mutating func skip(_ wireType: UInt64) -> Bool {
            switch wireType {
            case ProtoWire.varint: return varint() != nil
            case ProtoWire.fixed64: return bytes.readSlice(length: 8) != nil
            case ProtoWire.lengthDelimited: return delimited() != nil
            case ProtoWire.fixed32: return bytes.readSlice(length: 4) != nil
            default: return false
            }
        }
    }
}
