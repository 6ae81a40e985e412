import NIOCore
import NIOHPACK
import SwiftProtobuf

/// gRPC over HTTP/2 as the pure runner's server speaks it: length-prefixed protobuf messages,
/// a status in the trailers, and the few headers that carry meaning. Only what Fn's load
/// balancer (grpc-go) and grpc-swift's client send is understood; compressed messages are
/// refused, as the server announces no encoding.
enum GRPCWire {
    /// The status codes this server answers with (gRPC's numbering).
    enum Status: Int {
        case ok = 0
        case invalidArgument = 3
        case deadlineExceeded = 4
        case resourceExhausted = 8
        case unimplemented = 12
        case `internal` = 13
        case unavailable = 14
    }

    /// An RPC that ends with a status other than OK, and why.
    struct Failure: Error, Equatable {
        let status: Status
        let message: String
        init(_ status: Status, _ message: String) {
            self.status = status
            self.message = message
        }
    }

    /// The largest message taken, as gRPC servers' default: a larger one ends its RPC with
    /// RESOURCE_EXHAUSTED before it is buffered whole.
    static let maxMessageBytes = 4 << 20

    /// Splits a stream's DATA into messages (a flag byte, a 4-byte big-endian length, the
    /// bytes), however the frames cut them.
    struct MessageReader {
        private var buffer: ByteBuffer?
        let maxMessageBytes: Int

        init(maxMessageBytes: Int = GRPCWire.maxMessageBytes) { self.maxMessageBytes = maxMessageBytes }

        mutating func append(_ bytes: ByteBuffer) {
            if buffer == nil || buffer!.readableBytes == 0 {
                buffer = bytes
            } else {
                var more = bytes
                buffer!.writeBuffer(&more)
            }
        }

        /// The next whole message, nil until one is there.
        mutating func next() throws(Failure) -> ByteBuffer? {
            guard var b = buffer, b.readableBytes >= 5, let flag = b.getInteger(at: b.readerIndex, as: UInt8.self),
                let length = b.getInteger(at: b.readerIndex + 1, as: UInt32.self)
            else { return nil }
            guard flag == 0 else {
                throw Failure(.unimplemented, "compressed messages are not accepted (flag \(flag)); send them with grpc-encoding identity")
            }
            guard Int(length) <= maxMessageBytes else {
                throw Failure(.resourceExhausted, "message of \(length) bytes is larger than the limit of \(maxMessageBytes)")
            }
            guard b.readableBytes >= 5 + Int(length) else { return nil }
            b.moveReaderIndex(forwardBy: 5)
            let message = b.readSlice(length: Int(length))!
            buffer = b.readableBytes == 0 ? nil : b
            return message
        }

        /// Bytes of a message not yet whole: a stream that ends with some cut one short.
        var hasPartialMessage: Bool { (buffer?.readableBytes ?? 0) > 0 }
    }

    static func decode<M: Message>(_ type: M.Type, _ bytes: ByteBuffer) throws(Failure) -> M {
        do {
            return try M(serializedBytes: Array(bytes.readableBytesView))
        } catch {
            throw Failure(.internal, "could not decode \(M.protoMessageName): \(error)")
        }
    }

    /// Messages framed one after another into `buffer`.
    static func write<M: Message>(_ messages: [M], into buffer: inout ByteBuffer) {
        for message in messages {
            // Our messages always serialize: their fields are set from valid values.
            let bytes: [UInt8] = (try? message.serializedBytes()) ?? []
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt32(bytes.count))
            buffer.writeBytes(bytes)
        }
    }

    static let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]

    /// The trailers of an RPC that answered and ended well.
    static let okTrailers = trailers(nil, trailersOnly: false)

    /// The trailers that end an RPC; with `trailersOnly`, also the answer's head (an RPC that
    /// fails before it answered anything).
    static func trailers(_ failure: Failure?, trailersOnly: Bool) -> HPACKHeaders {
        var h: HPACKHeaders = trailersOnly ? responseHeaders : [:]
        h.add(name: "grpc-status", value: String((failure?.status ?? .ok).rawValue))
        if let failure, !failure.message.isEmpty { h.add(name: "grpc-message", value: percentEncoded(failure.message)) }
        return h
    }

    /// grpc-message's encoding: printable ASCII but '%' as it is, every other byte as %XX.
    static func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if b >= 0x20 && b <= 0x7e && b != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 0xf)]], as: UTF8.self)
            }
        }
        return out
    }

    /// grpc-timeout: up to 8 digits and a unit (H, M, S, m, u, n), as nanoseconds; nil when
    /// absent. A malformed one is refused rather than ignored, as it would be a deadline lost.
    static func timeoutNanos(_ value: String?) throws(Failure) -> Int64? {
        guard let value else { return nil }
        guard let unit = value.last, value.count >= 2, value.count <= 9, let amount = Int64(value.dropLast()), amount >= 0 else {
            throw Failure(.invalidArgument, "grpc-timeout \"\(value)\" is not a number of at most 8 digits and a unit")
        }
        let scale: Int64
        switch unit {
        case "H": scale = 3_600_000_000_000
        case "M": scale = 60_000_000_000
        case "S": scale = 1_000_000_000
        case "m": scale = 1_000_000
        case "u": scale = 1_000
        case "n": scale = 1
        default: throw Failure(.invalidArgument, "grpc-timeout \"\(value)\" has no unit of H, M, S, m, u or n")
        }
        return amount.multipliedReportingOverflow(by: scale).overflow ? Int64.max : amount * scale
    }
}
