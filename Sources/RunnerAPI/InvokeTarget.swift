import HTTPTypes

/// What a request `InvokeChannelHandler` answers on the event loop calls: only the usual calls,
/// which the loop answers exactly as the router would.
///
/// A plain fn id or trigger path, no body or a Content-Length one within FN_MAX_REQUEST_SIZE,
/// not detached, not HEAD, on a server that does not trace requests. Anything else (detached
/// calls, 413s, unknown or unusual paths, chunked bodies, traced requests) is the router's.
enum InvokeTarget: Equatable {
    case invoke(fnID: String)
    /// `/t/{app}{source}`.
    case trigger(app: String, source: String)

    /// Nil when the router answers the request.
    init?(_ head: HTTPRequest, _ configuration: FnAPI.Configuration) {
        guard let path = head.path else { return nil }
        if path.hasPrefix("/invoke/") {
            guard head.method == .post else { return nil }
            // As bytes: the id is ASCII or no id of ours, and a Character walk costs a
            // grapheme check per byte on every invoke.
            let id = path.utf8.dropFirst(8).prefix { $0 != UInt8(ascii: "?") }
            guard !id.isEmpty, id.allSatisfy(Self.isIDByte) else { return nil }
            self = .invoke(fnID: String(Substring(id)))
        } else if path.hasPrefix("/t/") {
            // A plain path only (unreserved characters, no empty, "." or ".." segment, no
            // trailing slash): the router's matching of any other is its own.
            guard Self.triggerMethods.contains(head.method) else { return nil }
            let rest = path.utf8.dropFirst(3).prefix { $0 != UInt8(ascii: "?") }
            let segments = rest.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            guard let app = segments.first,
                segments.allSatisfy({
                    !$0.isEmpty && !$0.elementsEqual(".".utf8) && !$0.elementsEqual("..".utf8) && $0.allSatisfy(Self.isPathByte)
                })
            else { return nil }
            // Every segment is ASCII and none is empty: the source is the path after "{app}/".
            self = .trigger(app: String(Substring(app)), source: "/" + String(Substring(rest.dropFirst(app.count + 1))))
        } else {
            return nil
        }
        // No body, or one of a declared length within the limit: the router refuses longer
        // ones (413) before their body comes, and reads chunked ones.
        guard head.headerFields.value(.transferEncoding) == nil else { return nil }
        if let length = head.headerFields.value(.contentLength) {
            guard let n = Int(length), n >= 0, n <= configuration.maxRequestBytes else { return nil }
        }
        guard !FnAPI.isDetached(head.headerFields), !configuration.tracesRequests else { return nil }
    }

    /// A trigger's methods but HEAD, whose answer has no body (the router's).
    private static let triggerMethods: Set<HTTPRequest.Method> = Set(FnAPI.triggerMethods).subtracting([.head])

    private static func isPathByte(_ b: UInt8) -> Bool { isIDByte(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "~") }

    private static func isIDByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }
}
