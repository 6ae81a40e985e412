import Foundation
import NIOCore
import SwiftProtobuf

/// One message of an Engage's request (a ClientMsg), as the stream handler takes it.
///
/// The two shapes Fn's load balancer sends (a TryCall, then DataFrames) are read by hand off
/// the frame's bytes: through SwiftProtobuf each cost a copy into an array, a message object
/// and a `Data`, 6.5 µs of serve's CPU for a call's two (perf, concurrency 8), 3.6 by hand.
/// Anything else (unknown or repeated fields, a wrong wire type, bytes that are not a message)
/// goes to SwiftProtobuf, so what is accepted and the errors are its own.
enum EngageRequest: Equatable {
    case tryCall(modelJSON: String, slotHash: String)
    case data(ByteBuffer, eof: Bool)
    /// A ClientMsg with neither.
    case empty

    static func decode(_ bytes: ByteBuffer) throws(GRPCWire.Failure) -> EngageRequest {
        if let fast = fast(bytes) { return fast }
        let msg = try GRPCWire.decode(ClientMsg.self, bytes)
        switch msg.body {
        case .try(let t)?: return .tryCall(modelJSON: t.modelsCallJson, slotHash: t.slotHashID)
        case .data(let d)?: return .data(ByteBuffer(bytes: d.data), eof: d.eof)
        case nil: return .empty
        }
    }

    /// The message when it is one field, a TryCall or a DataFrame, of only known fields with
    /// their own wire types; nil for anything else.
    static func fast(_ bytes: ByteBuffer) -> EngageRequest? {
        var outer = ProtoWire.Reader(bytes)
        guard let (field, wireType) = outer.tag(), wireType == ProtoWire.lengthDelimited, let inner = outer.delimited(), outer.isAtEnd
        else { return nil }
        var r = ProtoWire.Reader(inner)
        switch field {
        case 1:
            var model = "", slotHash = ""
            while !r.isAtEnd {
                guard let (f, w) = r.tag() else { return nil }
                switch (f, w) {
                case (1, ProtoWire.lengthDelimited), (2, ProtoWire.lengthDelimited):
                    guard let s = r.delimited(), let text = utf8(s) else { return nil }
                    if f == 1 { model = text } else { slotHash = text }
                case (3, ProtoWire.lengthDelimited):
                    // extensions: a map Fn's runner hands to hooks fnrunner does not have.
                    guard r.skip(w) else { return nil }
                default:
                    return nil
                }
            }
            return .tryCall(modelJSON: model, slotHash: slotHash)
        case 2:
            var data = ByteBuffer()
            var eof = false
            var seen = (data: false, eof: false)
            while !r.isAtEnd {
                guard let (f, w) = r.tag() else { return nil }
                switch (f, w) {
                case (1, ProtoWire.lengthDelimited) where !seen.data:
                    guard let d = r.delimited() else { return nil }
                    data = d
                    seen.data = true
                case (2, ProtoWire.varint) where !seen.eof:
                    guard let v = r.varint() else { return nil }
                    eof = v != 0
                    seen.eof = true
                default:
                    return nil
                }
            }
            return .data(data, eof: eof)
        default:
            return nil
        }
    }

    /// proto3's strings are UTF-8; others fail (through SwiftProtobuf, with its error).
    private static func utf8(_ bytes: ByteBuffer) -> String? {
        bytes.readableBytesView.withContiguousStorageIfAvailable { String(validating: $0, as: UTF8.self) } ?? nil
    }
}
