import CCurlShim
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One libcurl easy handle, reused for the requests of one pull (keep-alive, TLS sessions).
final class HTTPTransfer {
    struct Response {
        var status: Int
        /// Lower-cased header names of the final response (after redirects).
        var headers: [String: String]
        var contentType: String?
        var curlCode: Int32
        var error: String
        /// The URL of the final response (after redirects).
        var effectiveURL: String

        var ok: Bool { curlCode == 0 }
        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    private final class Context {
        var headers: [String: String] = [:]
        var status = 0
        let onBody: (Int, UnsafeRawBufferPointer) -> Bool
        init(onBody: @escaping (Int, UnsafeRawBufferPointer) -> Bool) { self.onBody = onBody }
    }

    private let handle: UnsafeMutableRawPointer

    static let initialized: Void = cc_global_init()

    init() {
        _ = Self.initialized
        handle = cc_handle_new()
    }

    deinit { cc_handle_free(handle) }

    /// Performs a request; `onBody` receives the status and the body in chunks, and may return
    /// false to abort the transfer.
    func perform(
        url: String, method: String = "GET", headers: [String] = [], range: String? = nil, caFile: String? = nil,
        followRedirects: Bool = true, onBody: @escaping (Int, UnsafeRawBufferPointer) -> Bool = { _, _ in true }
    ) -> Response {
        let context = Context(onBody: onBody)
        let unmanaged = Unmanaged.passRetained(context)
        defer { unmanaged.release() }
        var response = cc_response()
        let headerStrings = headers.map { strdup($0) } + [nil]
        defer { for h in headerStrings { free(h) } }
        url.withCString { u in
            method.withCString { m in
                withOptionalCString(range) { r in
                    withOptionalCString(caFile) { ca in
                        headerStrings.withUnsafeBufferPointer { hs in
                            hs.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: hs.count) { hp in
                                var request = cc_request(
                                    url: u, method: m, headers: hp, range: r, ca_file: ca, follow_redirects: followRedirects ? 1 : 0,
                                    connect_timeout_ms: 10_000, low_speed_bytes: 1, low_speed_seconds: 60,
                                    on_body: HTTPTransfer.bodyCallback, on_header: HTTPTransfer.headerCallback,
                                    context: unmanaged.toOpaque())
                                _ = cc_perform(handle, &request, &response)
                            }
                        }
                    }
                }
            }
        }
        let contentType = withUnsafeBytes(of: response.content_type) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        let error = withUnsafeBytes(of: response.error) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        let effective = withUnsafeBytes(of: response.effective_url) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        return Response(
            status: Int(response.status), headers: context.headers, contentType: contentType.isEmpty ? nil : contentType,
            curlCode: response.curl_code, error: error, effectiveURL: effective)
    }

    private static let bodyCallback: cc_data_callback = { data, size, count, ctx in
        let context = Unmanaged<Context>.fromOpaque(ctx!).takeUnretainedValue()
        let n = size * count
        return context.onBody(context.status, UnsafeRawBufferPointer(start: data, count: n)) ? n : 0
    }

    private static let headerCallback: cc_data_callback = { data, size, count, ctx in
        let context = Unmanaged<Context>.fromOpaque(ctx!).takeUnretainedValue()
        let n = size * count
        let line = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            context.headers = [:]  // a new response (after a redirect or 100-continue)
            let fields = line.split(separator: " ")
            context.status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
        } else if let colon = line.firstIndex(of: ":") {
            context.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmed
        }
        return n
    }
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}
