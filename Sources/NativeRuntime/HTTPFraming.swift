import Runner
import RunnerOS

/// How a function's HTTP/1.1 answer says where its body ends: the rules for lengths and chunk
/// sizes, kept strict so that a hostile function can neither overflow a sum nor make the
/// framing ambiguous.
enum HTTPFraming {
    /// No body is larger than this (1 TiB), whatever a function says: sizes are digits only
    /// and bounded, so no sum overflows and no slice is negative.
    static let maxSize = 1 << 40

    /// The one Content-Length of an answer: repeated (as headers or a list) only with the same
    /// value; different values make the framing ambiguous, and HTTP says to refuse the answer.
    static func contentLength(_ headers: [HTTPHeader]) throws(RunnerError) -> String? {
        let values = headers.filter { $0.name == "content-length" }.flatMap { $0.value.split(separator: ",").map { $0.trimmed } }
        guard let first = values.first else { return nil }
        if values.contains(where: { $0 != first }) {
            throw RunnerError(
                .invalidArgument, "the function sent conflicting Content-Length values: \(values.prefix(4).joined(separator: ", ").prefix(80))",
                step: "read response")
        }
        return first
    }

    /// A length or chunk size: digits of `radix` only (no sign, no spaces), at most `maxSize`.
    static func size(_ text: String, radix: Int) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 12, text.utf8.allSatisfy({ $0 < 0x80 && Character(UnicodeScalar($0)).isHexDigit }),
            let n = Int(text, radix: radix), n >= 0, n <= maxSize
        else { return nil }
        return n
    }
}
