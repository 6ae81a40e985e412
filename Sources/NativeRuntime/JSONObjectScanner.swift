import Runner
import RunnerOS

/// Finds where the first JSON object in a byte stream ends (the json format reads one object
/// per call from a function's stdout, with no length in front of it).
struct JSONObjectScanner {
    /// The index just past the first complete top-level object in `bytes`, nil if it is not
    /// complete yet; an error if the stream does not start with an object.
    func end(in bytes: [UInt8]) throws(RunnerError) -> Int? {
        var i = 0
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
        guard i < bytes.count else { return nil }
        guard bytes[i] == UInt8(ascii: "{") else {
            throw RunnerError(
                .functionInvalidResponse, "invalid json response from function err: expected an object, got \"\(Character(Unicode.Scalar(bytes[i])))\"",
                step: "read response")
        }
        var depth = 0
        var inString = false
        var escaped = false
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if b == UInt8(ascii: "\"") {
                inString = true
            } else if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                depth += 1
            } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 { return i + 1 }
            }
            i += 1
        }
        return nil
    }
}
