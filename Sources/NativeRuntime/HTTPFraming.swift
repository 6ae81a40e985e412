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

    /// The status and headers of a response head (`head`: the bytes before the blank line),
    /// parsed as bytes: header names in ASCII lower case, values without the spaces and tabs
    /// around them. Splitting the head as a String cost a grapheme walk over every byte of it,
    /// on every call.
    static func responseHead(_ head: ArraySlice<UInt8>) throws(RunnerError) -> (status: Int, headers: [HTTPHeader]) {
        var lines: [ArraySlice<UInt8>] = []
        var start = head.startIndex
        var i = head.startIndex
        while i < head.endIndex {
            if head[i] == 13, i + 1 < head.endIndex, head[i + 1] == 10 {
                lines.append(head[start..<i])
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        lines.append(head[start..<head.endIndex])
        let statusLine = lines[0]
        // "HTTP/1.x", spaces, a status of digits, then a space or the end of the line.
        let version = statusLine.prefix(7)
        let isHTTP1 = version.elementsEqual("HTTP/1.".utf8)
        var cursor = statusLine.startIndex + version.count
        if isHTTP1 { while cursor < statusLine.endIndex && statusLine[cursor] != 32 { cursor += 1 } }
        while cursor < statusLine.endIndex && statusLine[cursor] == 32 { cursor += 1 }
        var codeEnd = cursor
        while codeEnd < statusLine.endIndex && statusLine[codeEnd] != 32 { codeEnd += 1 }
        guard isHTTP1, codeEnd > cursor, codeEnd - cursor <= 9,
            statusLine[cursor..<codeEnd].allSatisfy({ $0 >= 48 && $0 <= 57 })
        else {
            throw RunnerError(
                .invalidArgument, "the function sent an invalid status line: \(String(decoding: statusLine.prefix(80), as: UTF8.self))",
                step: "read response")
        }
        let status = statusLine[cursor..<codeEnd].reduce(0) { $0 * 10 + Int($1 - 48) }
        var headers: [HTTPHeader] = []
        headers.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: 58) else {
                throw RunnerError(
                    .invalidArgument, "the function sent an invalid header line: \(String(decoding: line.prefix(80), as: UTF8.self))",
                    step: "read response")
            }
            let name = String(decoding: line[..<colon].lazy.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
            var value = line[(colon + 1)...]
            while let first = value.first, first == 32 || first == 9 { value.removeFirst() }
            while let last = value.last, last == 32 || last == 9 { value.removeLast() }
            headers.append(HTTPHeader(name: name, value: String(decoding: value, as: UTF8.self)))
        }
        return (status, headers)
    }
}
