import Logging
import RunnerOS

/// What the agent knows about a function: identity, image, limits and configuration.
public struct FunctionDefinition: Sendable, Equatable, Codable {
    public var appID: String
    public var appName: String
    public var fnID: String
    public var fnName: String
    public var image: String
    /// `http-stream` (the default and what every current FDK speaks).
    public var format: String
    public var memoryMB: UInt64
    public var cpuMillicores: UInt64
    public var timeoutSeconds: Int
    public var idleTimeoutSeconds: Int
    public var appConfig: [String: String]
    public var fnConfig: [String: String]
    public var annotations: [String: String]
    /// The app's syslog_url: where the function's output goes besides the call's log.
    public var syslogURL: String?

    public init(
        appID: String, appName: String, fnID: String, fnName: String, image: String, format: String = "http-stream",
        memoryMB: UInt64 = 128, cpuMillicores: UInt64 = 0, timeoutSeconds: Int = 30, idleTimeoutSeconds: Int = 30,
        appConfig: [String: String] = [:], fnConfig: [String: String] = [:], annotations: [String: String] = [:],
        syslogURL: String? = nil
    ) {
        self.appID = appID
        self.appName = appName
        self.fnID = fnID
        self.fnName = fnName
        self.image = image
        self.format = format
        self.memoryMB = memoryMB
        self.cpuMillicores = cpuMillicores
        self.timeoutSeconds = timeoutSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.appConfig = appConfig
        self.fnConfig = fnConfig
        self.annotations = annotations
        self.syslogURL = syslogURL
    }

    /// The annotation that sets FN_FREEZE_IDLE_MSECS for one function (freeze experiments):
    /// milliseconds of idleness before its containers are frozen; 0 at once, negative never.
    public static let freezeIdleAnnotation = "fnrunner.io/freeze-idle-msecs"

    /// The function's own freeze delay, if its annotation sets one. Annotation values are JSON
    /// text: a number, or a string holding one.
    public var freezeIdleMillis: Int? { Self.wholeNumber(annotations[Self.freezeIdleAnnotation]) }

    /// The annotation that turns reclaiming a frozen container's memory on (true) or off
    /// (false) for one function, whatever FN_FREEZE_RECLAIM says.
    public static let freezeReclaimAnnotation = "fnrunner.io/freeze-reclaim"

    /// The function's own reclaim choice, if its annotation makes one (JSON true or false).
    public var freezeReclaim: Bool? {
        switch Self.text(annotations[Self.freezeReclaimAnnotation]) {
        case "true": true
        case "false": false
        default: nil
        }
    }

    /// The annotation (of the fn, or of its app) that keeps this many instances started, and
    /// frozen, ahead of demand: a first call is a thaw, not a cold start.
    public static let prewarmAnnotation = "fnrunner.io/prewarm"
    /// The most instances one fn may keep prewarmed.
    public static let maxPrewarm = 32

    /// How many instances to keep ahead of demand; 0 without the annotation. Values are
    /// checked when a fn or app is saved, so one out of range here counts as none.
    public var prewarmCount: Int {
        guard let n = Self.wholeNumber(annotations[Self.prewarmAnnotation]), (0...Self.maxPrewarm).contains(n) else { return 0 }
        return n
    }

    /// The annotation that opts a function into a zygote: "python" makes new instances forks
    /// of a template that has already imported the FDK and the function (see the README's
    /// security section for what instances then share). Anything else is refused when saved.
    public static let zygoteAnnotation = "fnrunner.io/zygote"

    /// Whether new instances come from a Python zygote template.
    public var usesPythonZygote: Bool {
        Self.text(annotations[Self.zygoteAnnotation]) == "python"
    }

    /// The annotation (of the fn, or of its app) that picks the function's network: "none"
    /// (loopback only), "bridge" (the node's function bridge) or "host" (where the operator
    /// allows it). Without it, the node's default.
    public static let networkAnnotation = "fnrunner.io/network"

    /// The network the annotation asks for, if any (its JSON string's text).
    public var requestedNetwork: String? {
        Self.text(annotations[Self.networkAnnotation])
    }

    /// An annotation value (JSON text) that is a whole number, or a string holding one.
    ///
    /// A number may be written with a zero fraction or an exponent (`2.0`, `2e0`): the HTTP
    /// edge's annotations come re-encoded (`2`), but Fn's LB sends them as the user stored them.
    public static func wholeNumber(_ raw: String?) -> Int? {
        guard let text = text(raw) else { return nil }
        if let n = Int(text) { return n }
        guard case .number? = try? JSONNode.parse(text), let d = Double(text) else { return nil }
        return Int(exactly: d)
    }

    /// An annotation value's text: what a JSON string holds (escapes decoded), else the JSON
    /// text itself (a number, true, false). The settings above all read their values this way.
    static func text(_ raw: String?) -> String? {
        guard let raw, raw.hasPrefix("\"") else { return raw }
        if case .string(let s)? = try? JSONNode.parse(raw) { return s }
        return raw
    }

    /// Where the FDK listens inside the container (Fn's fixed path).
    public static let listenerPath = "/tmp/iofs/lsnr.sock"

    /// The configuration a function sees, as Fn builds it: app config, then fn config, then the
    /// FN_* variables (each later source wins).
    public var environment: [String] {
        var env: [String: String] = [:]
        for (k, v) in appConfig { env[k] = v }
        for (k, v) in fnConfig { env[k] = v }
        env["FN_APP_ID"] = appID
        env["FN_FN_ID"] = fnID
        env["FN_APP_NAME"] = appName
        env["FN_FN_NAME"] = fnName
        env["FN_MEMORY"] = String(memoryMB)
        env["FN_TYPE"] = "sync"
        env["FN_FORMAT"] = format
        if format == "http-stream" { env["FN_LISTENER"] = "unix:" + Self.listenerPath }
        return env.keys.sorted().map { "\($0)=\(env[$0]!)" }
    }

    /// Containers are only ever shared by calls with this same key.
    public var slotKey: SlotKey {
        var config = appConfig
        if config.isEmpty {
            config = fnConfig
        } else {
            for (k, v) in fnConfig { config[k] = v }
        }
        // How many instances are kept ahead changes no container: it is not part of the key.
        var made = annotations
        if made[Self.prewarmAnnotation] != nil { made[Self.prewarmAnnotation] = nil }
        return SlotKey(
            appID: appID, fnID: fnID, image: image, format: format, memoryMB: memoryMB, cpuMillicores: cpuMillicores,
            timeoutSeconds: timeoutSeconds, idleTimeoutSeconds: idleTimeoutSeconds, config: config, annotations: made,
            syslogURL: syslogURL ?? "")
    }
}

extension FunctionDefinition {
    /// The keys every log line about this function's containers carries, the same in text and
    /// JSON logs, so a collector can find one app's, fn's or container's lines by field.
    public func logMetadata(container: String? = nil) -> Logger.Metadata {
        var m: Logger.Metadata = ["app_id": "\(appID)", "fn_id": "\(fnID)", "image": "\(image)"]
        if let container { m["container"] = "\(container)" }
        return m
    }
}
