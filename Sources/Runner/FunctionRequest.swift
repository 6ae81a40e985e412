import RunnerOS

/// A request to a function over http-stream.
public struct FunctionRequest: Sendable {
    /// The client's method and URL: sent to cold functions (FN_METHOD, FN_REQUEST_URL) and in
    /// the http and json formats; http-stream always sends POST /call.
    public var method: String
    public var url: String
    public var callID: String
    /// RFC 3339 deadline the FDK passes to the function (it does not enforce it; the runner does).
    public var deadline: String
    public var contentType: String?
    /// The caller's headers (the API layer translates trigger headers); a function gets
    /// `passedHeaders` of them.
    public var headers: [(String, String)]

    /// The headers a function is given: not hop-by-hop, not one the runner sets itself, not
    /// Content-Type (it travels as `contentType`), and none whose name or value could break the
    /// framing of an HTTP head; names in Go's canonical form, as Fn's agent passes them.
    public var passedHeaders: [(String, String)] {
        var passed: [(String, String)] = []
        passed.reserveCapacity(headers.count)
        // As bytes: a colon, like a CR or LF, is one byte in UTF-8 and in no other character's.
        for (name, value) in headers
        where !name.isEmpty && HopByHop.isPassedOn(name) && !HopByHop.equalsIgnoringCase(name, Self.contentType)
            && !Self.hasLineBreak(name) && !name.utf8.contains(58) && !Self.hasLineBreak(value)
        {
            passed.append((GoHeaderName.canonical(name), value))
        }
        return passed
    }
    private static let contentType = Array("content-type".utf8)

    /// Whether a value the runner writes into the function's request head as it came (the call
    /// id, the deadline, the Content-Type) holds a line break, which would add lines to it.
    package var headHasLineBreak: Bool {
        Self.hasLineBreak(callID) || Self.hasLineBreak(deadline) || Self.hasLineBreak(contentType ?? "")
    }

    /// As bytes: a CR or LF is one byte in UTF-8 and in no other character's encoding, and a CR
    /// LF pair is one Character, equal to neither.
    static func hasLineBreak(_ value: String) -> Bool { value.utf8.contains { $0 == 13 || $0 == 10 } }
    public var body: [UInt8]

    public init(
        callID: String = "", deadline: String = "", method: String = "POST", url: String = "", contentType: String? = nil,
        headers: [(String, String)] = [], body: [UInt8] = []
    ) {
        self.method = method
        self.url = url
        self.callID = callID
        self.deadline = deadline
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }
}
