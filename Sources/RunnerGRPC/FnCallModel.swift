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
        // Limits out of range are refused, not clamped: the agent multiplies them into
        // nanoseconds and bytes, and an LB never sends them (Fn's API keeps its fns in range).
        func limit(_ key: String, default value: Int, in range: ClosedRange<Int>) throws(RunnerError) -> Int {
            guard let node = object.member(key), node != .null else { return value }
            guard let n = node.int, range.contains(n) else {
                throw RunnerError(
                    .invalidArgument, "models_call_json has \(key) \(node.compactText); it must be between \(range.lowerBound) and \(range.upperBound)",
                    step: "read TryCall")
            }
            return n
        }
        let memory = try limit("memory", default: 128, in: 0...Self.maxMemoryMB)
        let timeout = try limit("timeout", default: 30, in: 1...Self.maxTimeoutSeconds)
        let idleTimeout = try limit("idle_timeout", default: 30, in: 1...Self.maxTimeoutSeconds)
        guard let cpus = Self.millicores(object.member("cpus")) else {
            throw RunnerError(
                .invalidArgument,
                "models_call_json has cpus \(object.member("cpus")?.compactText ?? ""); it must be millicores (\"100m\"), CPUs (\"0.1\") or a number of millicores up to \(Self.maxMillicores)",
                step: "read TryCall")
        }
        let function = FunctionDefinition(
            appID: string("app_id") ?? "", appName: string("app_name") ?? "", fnID: string("fn_id") ?? "",
            fnName: string("fn_name") ?? string("fn_id") ?? "", image: image, format: string("format") ?? "http-stream",
            memoryMB: UInt64(memory), cpuMillicores: cpus, timeoutSeconds: timeout, idleTimeoutSeconds: idleTimeout, fnConfig: config,
            annotations: annotations, syslogURL: string("syslog_url").flatMap { $0.isEmpty ? nil : $0 })
        let id = string("id") ?? ""
        // It goes into the function's request head (Fn-Call-Id) and the call's record.
        if id.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw RunnerError(.invalidArgument, "models_call_json has an id with a control character", step: "read TryCall")
        }
        return FnCallModel(
            id: id, type: string("type") ?? Call.sync, function: function, method: string("method") ?? "POST",
            url: string("url") ?? "", headers: headers)
    }

    /// The largest limits a call may carry: Fn's async timeout (its sync one is lower), a
    /// memory no node has, and Fn's largest CPU setting.
    static let maxTimeoutSeconds = 3600
    static let maxMemoryMB = 1 << 24
    static let maxMillicores: UInt64 = 1_024_000

    /// Fn writes CPUs as millicores, a number or a string such as "100m" or "0.1"; none or ""
    /// is no limit (0). Nil when it is none of these or out of range.
    static func millicores(_ value: JSONNode?) -> UInt64? {
        let millicores: UInt64?
        switch value {
        case nil, .null?: millicores = 0
        case .number?: millicores = value?.int.flatMap { $0 >= 0 ? UInt64($0) : nil }
        case .string(let s)? where s.isEmpty: millicores = 0
        case .string(let s)? where s.hasSuffix("m"): millicores = UInt64(s.dropLast())
        case .string(let s)?:
            guard let cpus = Double(s), cpus.isFinite, cpus >= 0, cpus <= Double(maxMillicores) / 1000 else { return nil }
            millicores = UInt64(cpus * 1000)
        default: millicores = nil
        }
        return millicores.flatMap { $0 <= maxMillicores ? $0 : nil }
    }

    var contentType: String? { headers.first { $0.0.lowercased() == "content-type" }?.1 }

    var isDetached: Bool { type == Call.detached }
}
