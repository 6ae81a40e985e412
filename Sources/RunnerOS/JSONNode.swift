/// A JSON value read without Foundation, for documents read on every call.
///
/// Fn's load balancer sends each Engage call's model as JSON; JSONSerialization's bridged
/// dictionaries and NSNumbers cost about 14 µs of an Engage call's ~280 µs of server CPU, and
/// re-serializing annotations needs their text anyway. Numbers stay as their text (the reader
/// decides what it wants them as), and an object keeps its members in document order, so
/// `compactText` gives back what came without whitespace.
public indirect enum JSONNode: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text as it appeared (validated against JSON's grammar).
    case number(String)
    case string(String)
    case array([JSONNode])
    /// Members in document order; a repeated key appears twice (`member` takes the last).
    case object([(String, JSONNode)])

    /// Nesting deeper than this is refused rather than read recursively.
    public static let maxDepth = 256

    /// Parses one JSON document (whitespace around it allowed, nothing else after it).
    public static func parse(_ text: String) throws(RunnerError) -> JSONNode {
        var reader = Reader(bytes: Array(text.utf8))
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        if reader.index < reader.bytes.count { throw reader.failure("unexpected text after the value") }
        return value
    }

    /// An object's member (the last if the key repeats); nil for other values or a missing key.
    public func member(_ key: String) -> JSONNode? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// A number as an integer, truncating a fraction as Go's conversions do; nil if it is no
    /// number or out of Int's range.
    public var int: Int? {
        guard case .number(let text) = self else { return nil }
        if let i = Int(text) { return i }
        guard let d = Double(text), d.isFinite, d >= Double(Int.min), d < Double(Int.max) else { return nil }
        return Int(d)
    }

    /// The value as compact JSON text: no whitespace, members in their order, strings escaped
    /// as `JSONString` does.
    public var compactText: String {
        var out = ""
        appendCompact(to: &out)
        return out
    }

    public static func == (a: JSONNode, b: JSONNode) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    private func appendCompact(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let text): out += text
        case .string(let s): JSONString.append(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.appendCompact(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                JSONString.append(key, to: &out)
                out += ":"
                value.appendCompact(to: &out)
            }
            out += "}"
        }
    }

    /// A recursive-descent reader over the document's UTF-8 bytes.
    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func failure(_ what: String) -> RunnerError {
            RunnerError(.invalidArgument, "\(what) at byte \(index)", step: "parse JSON")
        }

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0a || bytes[index] == 0x0d || bytes[index] == 0x09 {
                index += 1
            }
        }

        mutating func value(depth: Int) throws(RunnerError) -> JSONNode {
            guard index < bytes.count else { throw failure("the document ended where a value belongs") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw failure("unexpected character \(Self.shown(bytes[index]))")
            }
        }

        mutating func object(depth: Int) throws(RunnerError) -> JSONNode {
            if depth > JSONNode.maxDepth { throw failure("nesting deeper than \(JSONNode.maxDepth)") }
            index += 1
            var members: [(String, JSONNode)] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw failure("expected a member name") }
                let key = try string()
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw failure("expected ':' after a member name") }
                index += 1
                skipSpace()
                members.append((key, try value(depth: depth)))
                skipSpace()
                guard index < bytes.count else { throw failure("the document ended inside an object") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(members)
                } else {
                    throw failure("expected ',' or '}' in an object")
                }
            }
        }

        mutating func array(depth: Int) throws(RunnerError) -> JSONNode {
            if depth > JSONNode.maxDepth { throw failure("nesting deeper than \(JSONNode.maxDepth)") }
            index += 1
            var items: [JSONNode] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                skipSpace()
                items.append(try value(depth: depth))
                skipSpace()
                guard index < bytes.count else { throw failure("the document ended inside an array") }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                } else if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                } else {
                    throw failure("expected ',' or ']' in an array")
                }
            }
        }

        mutating func literal(_ word: StaticString) throws(RunnerError) {
            for i in 0..<word.utf8CodeUnitCount {
                guard index < bytes.count else { throw failure("the document ended inside \(word)") }
                if bytes[index] != word.utf8Start[i] { throw failure("unexpected character \(Self.shown(bytes[index]))") }
                index += 1
            }
        }

        /// A number's text, checked against JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        mutating func number() throws(RunnerError) -> String {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw failure("a number needs a digit") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw failure("a number's fraction needs a digit") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw failure("a number's exponent needs a digit") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

        /// A string literal from its opening quote; escapes decoded, raw control characters
        /// refused. (The document came as a String, so its bytes are valid UTF-8, and so are
        /// the decoded escapes.)
        mutating func string() throws(RunnerError) -> String {
            index += 1
            let start = index
            // The common case: no escapes, so the bytes are the string.
            while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\"), bytes[index] >= 0x20 {
                index += 1
            }
            guard index < bytes.count else { throw failure("the document ended inside a string") }
            var out = [UInt8](bytes[start..<index])
            while true {
                guard index < bytes.count else { throw failure("the document ended inside a string") }
                let b = bytes[index]
                if b == UInt8(ascii: "\"") {
                    index += 1
                    break
                }
                if b < 0x20 { throw failure("a control character inside a string") }
                if b != UInt8(ascii: "\\") {
                    out.append(b)
                    index += 1
                    continue
                }
                index += 1
                guard index < bytes.count else { throw failure("the document ended inside a string") }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"): appendScalar(try unicodeEscape(), to: &out)
                default:
                    index -= 1
                    throw failure("an unknown escape \\\(Self.shown(e))")
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        /// The scalar of a \u escape (index just past the `u`); a surrogate pair makes one
        /// scalar, and a lone surrogate becomes U+FFFD as Go's decoder makes it.
        mutating func unicodeEscape() throws(RunnerError) -> Unicode.Scalar {
            let high = try hex4()
            if (0xD800..<0xDC00).contains(high), index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                bytes[index + 1] == UInt8(ascii: "u")
            {
                let saved = index
                index += 2
                let low = try hex4()
                if (0xDC00..<0xE000).contains(low) {
                    return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
                }
                index = saved
            }
            return Unicode.Scalar(high) ?? "\u{FFFD}"
        }

        mutating func hex4() throws(RunnerError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw failure("the document ended inside a \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[index]
                let d: UInt8
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
                default: throw failure("a \\u escape needs four hex digits")
                }
                v = v << 4 | UInt32(d)
                index += 1
            }
            return v
        }

        func appendScalar(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
            out.append(contentsOf: UTF8.encode(scalar)!)
        }

        static func shown(_ b: UInt8) -> String {
            b >= 0x21 && b < 0x7f ? "'\(Character(Unicode.Scalar(b)))'" : "0x" + String(b, radix: 16)
        }
    }
}
