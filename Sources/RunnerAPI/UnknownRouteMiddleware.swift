import Hummingbird
import RunnerOS

/// Fn's answers for requests no route takes: 405 "Method not allowed: GET /invoke/x" when the
/// path is one of the API's with another method, else 404 "Path not found: GET /nope", both
/// as `{"message": ...}` (Hummingbird's own are empty).
struct UnknownRouteMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The API's paths, `:` standing for one segment and `**` for the rest.
    let patterns: [[Substring]]

    init(paths: [String]) {
        patterns = paths.map { $0.split(separator: "/") }
    }

    // Hummingbird's protocol, built without nonisolated(nonsending) as the default.
    @concurrent func handle(
        _ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let method = request.method.rawValue
            let path = request.uri.path
            if isKnown(path) {
                return RunnerError(.methodNotAllowed, "Method not allowed: \(method) \(path)", step: "route").httpResponse()
            }
            return RunnerError(.notFound, "Path not found: \(method) \(path)", step: "route").httpResponse()
        }
    }

    func isKnown(_ path: String) -> Bool {
        let segments = path.split(separator: "/")
        return patterns.contains { pattern in
            if pattern.last == "**" { return segments.count >= pattern.count - 1 && zip(pattern.dropLast(), segments).allSatisfy(matches) }
            return segments.count == pattern.count && zip(pattern, segments).allSatisfy(matches)
        }
    }

    private func matches(_ pattern: Substring, _ segment: Substring) -> Bool { pattern.hasPrefix(":") || pattern == segment }
}
