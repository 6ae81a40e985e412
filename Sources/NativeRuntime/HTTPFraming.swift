import Runner
import RunnerOS

/// A function's HTTP/1.1 request as bytes, and how its answer says where its body ends: the
/// rules for lengths and chunk sizes, kept strict so that a hostile function can neither
/// overflow a sum nor make the framing ambiguous.
enum HTTPFraming {
    /// No body is larger than this (1 TiB), whatever a function says: sizes are digits only
    /// and bounded, so no sum overflows and no slice is negative.
    static let maxSize = 1 << 40

    /// The http-stream request for `request`, head and body in one buffer (one write). Written
    /// as bytes, with no string made per line. Values from an edge go into the head, and one
    /// with a line break would add lines to it: such a request is refused.
    static func request(_ request: FunctionRequest) throws(RunnerError) -> [UInt8] {
        if request.headHasLineBreak {
            throw RunnerError(.invalidArgument, "a line break in the call id, deadline or Content-Type", step: "send request")
        }
        var message: [UInt8] = []
        message.reserveCapacity(256 + request.body.count)
        func line(_ name: StaticString, _ value: String) {
            message.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            message.append(contentsOf: value.utf8)
            message.append(contentsOf: [13, 10])
        }
        line("POST /call HTTP/1.1\r\nHost: localhost\r\nFn-Call-Id: ", request.callID)
        line("Fn-Deadline: ", request.deadline)
        if let ct = request.contentType { line("Content-Type: ", ct) }
        for (name, value) in request.passedHeaders {
            message.append(contentsOf: name.utf8)
            line(": ", value)
        }
        line("Content-Length: ", String(request.body.count))
        message.append(contentsOf: [13, 10])
        message.append(contentsOf: request.body)
        return message
    }

    /// The one Content-Length of an answer: repeated (as headers or a list) only with the same
    /// value; different values make the framing ambiguous, and HTTP says to refuse the answer.
    static func contentLength(_ headers: [HTTPHeader]) throws(RunnerError) -> String? {
        // Read as bytes after every call: the usual single value makes no array and no String
        // beyond the one returned. List items are trimmed of ASCII whitespace only, as Go's
        // net/http reads them in Fn (a value with a Unicode space is no length there either).
        var first: Substring.UTF8View?
        var conflicting = false
        for header in headers where header.name == "content-length" {
            forEachListItem(header.value) { value in
                if let first { conflicting = conflicting || !value.elementsEqual(first) } else { first = value }
            }
        }
        guard let first else { return nil }
        if conflicting {
            var values: [String] = []
            for header in headers where header.name == "content-length" {
                forEachListItem(header.value) { values.append(String(decoding: $0, as: UTF8.self)) }
            }
            throw RunnerError(
                .invalidArgument, "the function sent conflicting Content-Length values: \(values.prefix(4).joined(separator: ", ").prefix(80))",
                step: "read response")
        }
        return String(decoding: first, as: UTF8.self)
    }

    /// The items of a comma-separated value, trimmed; empty ones (",,") are no item.
    private static func forEachListItem(_ value: String, _ body: (Substring.UTF8View) -> Void) {
        var rest = Substring(value).utf8
        while true {
            let comma = rest.firstIndex(of: UInt8(ascii: ","))
            let item = comma.map { rest[..<$0] } ?? rest
            if !item.isEmpty { body(trimmedASCIIWhitespace(item)) }
            guard let comma else { return }
            rest = rest[rest.index(after: comma)...]
        }
    }

    static func trimmedASCIIWhitespace(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
        func isSpace(_ b: UInt8) -> Bool { b == 32 || (b >= 9 && b <= 13) }
        var s = bytes
        while let b = s.first, isSpace(b) { s.removeFirst() }
        while let b = s.last, isSpace(b) { s.removeLast() }
        return s
    }

    /// A length or chunk size: digits of `radix` only (no sign, no spaces), at most `maxSize`.
    static func size(_ text: String, radix: Int) -> Int? {
        func isDigit(_ b: UInt8) -> Bool {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): radix == 16
            default: false
            }
        }
        guard !text.isEmpty, text.utf8.count <= 12, text.utf8.allSatisfy(isDigit), let n = Int(text, radix: radix), n >= 0, n <= maxSize
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
            let nameBytes = line[..<colon]
            let name = String(unsafeUninitializedCapacity: nameBytes.count) { out in
                for (i, b) in nameBytes.enumerated() { out[i] = b >= 65 && b <= 90 ? b | 0x20 : b }
                return nameBytes.count
            }
            var value = line[(colon + 1)...]
            while let first = value.first, first == 32 || first == 9 { value.removeFirst() }
            while let last = value.last, last == 32 || last == 9 { value.removeLast() }
            headers.append(HTTPHeader(name: name, value: String(decoding: value, as: UTF8.self)))
        }
        return (status, headers)
    }
}
