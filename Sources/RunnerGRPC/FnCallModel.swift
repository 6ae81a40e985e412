import Foundation
import Runner
import RunnerOS

/// The call as Fn's load balancer sends it in TryCall.models_call_json (Fn's call model): what
/// to run and with what request. Only what a runner needs is read; unknown fields are ignored,
/// as Fn's own runner does.
struct FnCallModel: Sendable {
    var id: String
    var type: String
    var function: FunctionDefinition
    var method: String
    var url: String
    var headers: [(String, String)]

    /// Parses the JSON; a clear error names what is missing or wrong.
    static func parse(_ json: String) throws(RunnerError) -> FnCallModel {
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
                throw RunnerError(.invalidArgument, "models_call_json is not a JSON object", step: "read TryCall")
            }
            object = o
        } catch let e as RunnerError {
            throw e
        } catch {
            throw RunnerError(.invalidArgument, "models_call_json is not JSON: \(error.localizedDescription)", step: "read TryCall")
        }
        func string(_ key: String) -> String? { object[key] as? String }
        func int(_ key: String) -> Int? { (object[key] as? NSNumber)?.intValue }
        guard let image = string("image"), !image.isEmpty else {
            throw RunnerError(.invalidArgument, "models_call_json has no image", step: "read TryCall")
        }
        var config: [String: String] = [:]
        for (k, v) in object["config"] as? [String: Any] ?? [:] { config[k] = "\(v)" }
        var annotations: [String: String] = [:]
        for (k, v) in object["annotations"] as? [String: Any] ?? [:] {
            if let data = try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed]) {
                annotations[k] = String(decoding: data, as: UTF8.self)
            }
        }
        var headers: [(String, String)] = []
        for (name, values) in (object["headers"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
            for value in values as? [String] ?? [] { headers.append((name, value)) }
        }
        let memory = int("memory") ?? 128
        let function = FunctionDefinition(
            appID: string("app_id") ?? "", appName: string("app_name") ?? "", fnID: string("fn_id") ?? "",
            fnName: string("fn_name") ?? string("fn_id") ?? "", image: image, format: string("format") ?? "http-stream",
            memoryMB: UInt64(max(0, memory)), cpuMillicores: Self.millicores(object["cpus"]), timeoutSeconds: int("timeout") ?? 30,
            idleTimeoutSeconds: int("idle_timeout") ?? 30, fnConfig: config, annotations: annotations,
            syslogURL: string("syslog_url").flatMap { $0.isEmpty ? nil : $0 })
        return FnCallModel(
            id: string("id") ?? "", type: string("type") ?? Call.sync, function: function, method: string("method") ?? "POST",
            url: string("url") ?? "", headers: headers)
    }

    /// Fn writes CPUs as millicores, a number or a string such as "100m" or "0.1".
    static func millicores(_ value: Any?) -> UInt64 {
        if let n = value as? NSNumber { return UInt64(max(0, n.intValue)) }
        guard let s = value as? String, !s.isEmpty else { return 0 }
        if s.hasSuffix("m") { return UInt64(s.dropLast()) ?? 0 }
        return Double(s).map { UInt64(max(0, $0 * 1000)) } ?? 0
    }

    var contentType: String? { headers.first { $0.0.lowercased() == "content-type" }?.1 }

    var isDetached: Bool { type == Call.detached }
}
