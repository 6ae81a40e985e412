import Foundation
import HTTPTypes
import Hummingbird
import Runner
import RunnerOS
import RunnerStore

/// The edge where errors become statuses: every RunnerError a handler throws is answered as Fn
/// answers it, `{"message": "…"}` with Fn's status (503 with `Retry-After: 15`).
extension RunnerError: HTTPResponseError {
    public var status: HTTPResponse.Status {
        if let s = callStatus { return HTTPResponse.Status(code: s) }
        switch code {
        case .notFound: return .notFound
        case .conflict: return .conflict
        case .unauthorized: return .unauthorized
        case .methodNotAllowed: return .methodNotAllowed
        case .notImplemented: return .notImplemented
        case .storeUnavailable: return .serviceUnavailable
        default: return .internalServerError
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response { httpResponse() }

    /// Fn's error response for this error.
    public func httpResponse() -> Response {
        let (status, headers, body) = httpAnswer()
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    /// Fn's error answer as status, headers and body, for an edge that writes its own parts.
    func httpAnswer() -> (HTTPResponse.Status, HTTPFields, ByteBuffer) {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if status == .serviceUnavailable { headers[.retryAfter] = "15" }
        // Internal failures say what failed without leaking more than the message; a call's
        // own 500 (Fn's "Syslog Unavailable") is answered in Fn's words.
        let message = status == .internalServerError && callStatus == nil ? "internal server error: \(message)" : message
        // Fn writes its errors with Go's json.Encoder, which ends them with a newline.
        let body = ((try? JSONEncoder().encode(["message": message])) ?? Data("{}".utf8)) + Data("\n".utf8)
        return (status, headers, ByteBuffer(bytes: body))
    }
}

extension RunnerError.Code {
    /// The endpoint does not take this method (405).
    public static let methodNotAllowed = RunnerError.Code("method_not_allowed")
}

enum APIErrors {
    /// Fn's answer to a body that does not decode, word for word; what was wrong goes into the
    /// step (logged, not answered).
    static func badJSON(_ error: any Error) -> RunnerError {
        let detail: String
        switch error {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            detail = "wrong type for \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.keyNotFound(let key, _): detail = "missing field \(key.stringValue)"
        case DecodingError.dataCorrupted(let c): detail = c.debugDescription
        default: detail = "\(error)"
        }
        return RunnerError(.invalidArgument, "Invalid JSON", step: "decode body: \(detail)")
    }
}
