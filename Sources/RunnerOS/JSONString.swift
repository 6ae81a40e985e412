/// JSON string literals written by hand, without an encoder: call records and log lines are
/// formatted on every call, and only strings need escaping there.
public enum JSONString {
    /// Appends `s` as a JSON string literal: quotes, backslashes and control characters
    /// escaped, everything else (valid UTF-8) as it is.
    public static func append(_ s: String, to out: inout String) {
        if s.utf8.allSatisfy({ !needsEscape($0) }) {
            out += "\""
            out += s
            out += "\""
        } else {
            var bytes: [UInt8] = []
            append(s, to: &bytes)
            out += String(decoding: bytes, as: UTF8.self)
        }
    }

    /// The same literal as UTF-8 bytes, each run between escapes copied whole (call records
    /// are made this way, on every call).
    public static func append(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            var start = 0
            for (i, b) in bytes.enumerated() where needsEscape(b) {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
                start = i + 1
                out.append(UInt8(ascii: "\\"))
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(b)
                case UInt8(ascii: "\n"): out.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): out.append(UInt8(ascii: "r"))
                case UInt8(ascii: "\t"): out.append(UInt8(ascii: "t"))
                default:
                    out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 0xf)]])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func needsEscape(_ b: UInt8) -> Bool { b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") }

    private static let hex = Array("0123456789abcdef".utf8)

    public static func quoted(_ s: String) -> String {
        var out = ""
        append(s, to: &out)
        return out
    }
}
