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
    ///
    /// Read with `JSONNode` on every Engage, not JSONSerialization (see its doc). Annotations
    /// keep their values as compact JSON text; a config value that is not a string (Fn's are)
    /// keeps its JSON text too.
    static func parse(_ json: String) throws(RunnerError) -> FnCallModel {
        let object: JSONNode
        do {
            object = try JSONNode.parse(json)
        } catch {
            throw RunnerError(.invalidArgument, "models_call_json is not JSON: \(error.message)", step: "read TryCall")
        }
        guard case .object = object else {
            throw RunnerError(.invalidArgument, "models_call_json is not a JSON object", step: "read TryCall")
        }
        func string(_ key: String) -> String? { object.member(key)?.string }
        func int(_ key: String) -> Int? { object.member(key)?.int }
        guard let image = string("image"), !image.isEmpty else {
            throw RunnerError(.invalidArgument, "models_call_json has no image", step: "read TryCall")
        }
        var config: [String: String] = [:]
        if case .object(let members)? = object.member("config") {
            for (k, v) in members { config[k] = v.string ?? v.compactText }
        }
        var annotations: [String: String] = [:]
        if case .object(let members)? = object.member("annotations") {
            for (k, v) in members { annotations[k] = v.compactText }
        }
        var headers: [(String, String)] = []
        if case .object(let members)? = object.member("headers") {
            var byName: [String: JSONNode] = [:]
            for (name, values) in members { byName[name] = values }
            for (name, values) in byName.sorted(by: { $0.key < $1.key }) {
                guard case .array(let items) = values else { continue }
                for case .string(let value) in items { headers.append((name, value)) }
            }
        }
        let memory = int("memory") ?? 128
        let function = FunctionDefinition(
            appID: string("app_id") ?? "", appName: string("app_name") ?? "", fnID: string("fn_id") ?? "",
            fnName: string("fn_name") ?? string("fn_id") ?? "", image: image, format: string("format") ?? "http-stream",
            memoryMB: UInt64(max(0, memory)), cpuMillicores: Self.millicores(object.member("cpus")), timeoutSeconds: int("timeout") ?? 30,
            idleTimeoutSeconds: int("idle_timeout") ?? 30, fnConfig: config, annotations: annotations,
            syslogURL: string("syslog_url").flatMap { $0.isEmpty ? nil : $0 })
        return FnCallModel(
            id: string("id") ?? "", type: string("type") ?? Call.sync, function: function, method: string("method") ?? "POST",
            url: string("url") ?? "", headers: headers)
    }

    /// Fn writes CPUs as millicores, a number or a string such as "100m" or "0.1".
    static func millicores(_ value: JSONNode?) -> UInt64 {
        if let n = value?.int { return UInt64(max(0, n)) }
        guard let s = value?.string, !s.isEmpty else { return 0 }
        if s.hasSuffix("m") { return UInt64(s.dropLast()) ?? 0 }
        return Double(s).map { UInt64(max(0, $0 * 1000)) } ?? 0
    }

    var contentType: String? { headers.first { $0.0.lowercased() == "content-type" }?.1 }

    var isDetached: Bool { type == Call.detached }
}
