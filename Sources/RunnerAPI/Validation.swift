import Runner
import RunnerOS
import RunnerStore

/// Fn's validation rules for names, limits and annotations, with its messages.
enum Validation {
    static let maxNameLength = 255

    /// Fn's name rules and messages, which differ by kind: app and trigger names are letters,
    /// numbers, '_' and '-'; a fn name is anything a URL path carries unescaped.
    enum NameKind {
        case app, fn, trigger

        var missing: String {
            switch self {
            case .app: "Missing Name"
            case .fn: "Missing Fn name"
            case .trigger: "Missing name on Trigger"
            }
        }
        var tooLong: String {
            let noun =
                switch self {
                case .app: "App name"
                case .fn: "Fn name"
                case .trigger: "Trigger name"
                }
            return noun + " must be \(Validation.maxNameLength) characters or less"
        }
        var invalid: String {
            switch self {
            case .app: "Invalid app name"
            case .fn: "name must be a valid string"
            case .trigger: "Invalid name for Trigger"
            }
        }

        func allows(_ c: Unicode.Scalar) -> Bool {
            switch self {
            case .app, .trigger:
                switch c.properties.generalCategory {
                case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
                case .decimalNumber, .letterNumber, .otherNumber: return true
                default: return c == "_" || c == "-"
                }
            case .fn:
                return c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "-_.~$&+:=@".unicodeScalars.contains(c))
            }
        }
    }

    static func name(_ value: String?, of kind: NameKind) throws(RunnerError) -> String {
        guard let value, !value.isEmpty else { throw invalid(kind.missing) }
        guard value.utf8.count <= maxNameLength else { throw invalid(kind.tooLong) }
        guard value.unicodeScalars.allSatisfy(kind.allows) else { throw invalid(kind.invalid) }
        return value
    }

    /// Fn's defaults for what a create leaves out or sets to 0.
    static let defaultMemoryMB: UInt64 = 128
    static let defaultTimeout = 30
    static let defaultIdleTimeout = 30

    /// `value`, unless it is missing or 0, which in Fn both mean "the default".
    static func given<T: BinaryInteger>(_ value: T?, else fallback: T) -> T {
        guard let value, value != 0 else { return fallback }
        return value
    }

    static func memory(_ v: UInt64) throws(RunnerError) -> UInt64 {
        guard v >= 1 && v <= 8192 else { throw invalid("memory value is out of range. It should be between 0 and 8192") }
        return v
    }

    static func timeout(_ v: Int) throws(RunnerError) -> Int {
        guard v >= 1 && v <= 300 else { throw invalid("timeout value is out of range, must be between 0 and 300") }
        return v
    }

    static func idleTimeout(_ v: Int) throws(RunnerError) -> Int {
        guard v >= 1 && v <= 3600 else { throw invalid("idle_timeout value is out of range, must be between 0 and 3600") }
        return v
    }

    static func format(_ v: String) throws(RunnerError) -> String {
        guard FunctionFormat(rawValue: v) != nil else {
            throw invalid("format must be one of http-stream, default, http, json (not \"\(v)\")")
        }
        return v
    }

    static func cpus(_ v: UInt64) throws(RunnerError) -> UInt64 {
        guard v <= 1_024_000 else { throw invalid("cpus value is out of range, must be between 0 and 1024000 millicores") }
        return v
    }

    /// Keys non-empty ASCII without spaces, ≤ 128 bytes; values non-empty, ≤ 512 bytes as
    /// JSON; at most 100 keys.
    /// Fn's check of an app's syslog_url: a scheme Docker's syslog driver knows (empty: none).
    static func syslogURL(_ url: String?) throws(RunnerError) -> String? {
        guard let url, !url.isEmpty else { return url }
        var trimmed = Substring(url).trimmingPrefix(while: \.isWhitespace)
        while trimmed.last?.isWhitespace == true { trimmed = trimmed.dropLast() }
        var scheme = ""
        if let colon = trimmed.firstIndex(of: ":"), let first = trimmed.first, first.isASCII, first.isLetter,
            trimmed[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == ".") })
        {
            scheme = trimmed[..<colon].lowercased()
        }
        guard ["udp", "tcp", "unix", "unixgram", "tcp+tls"].contains(scheme) else {
            throw invalid("invalid syslog url: \"\(url)\" invalid scheme, only [tcp, udp, unix, unixgram, tcp+tls] are supported")
        }
        return url
    }

    /// `networks`: what a function on this node may ask for with `fnrunner.io/network`.
    static func annotations(_ a: [String: JSONValue], networks: Set<String> = ["none", "bridge"]) throws(RunnerError)
        -> [String: JSONValue]
    {
        if a.count > 100 { throw invalid("too many annotations (at most 100)") }
        for (k, v) in a {
            if k.isEmpty || k.utf8.count > 128 || !k.unicodeScalars.allSatisfy({ $0.isASCII && $0 != " " && $0.value > 32 }) {
                throw invalid("invalid annotation key \"\(k.prefix(40))\": non-empty ASCII without spaces, at most 128 bytes")
            }
            if v.isEmpty { throw invalid("annotation \"\(k)\" has an empty value") }
            if v.jsonText.utf8.count > 512 { throw invalid("annotation \"\(k)\" is larger than 512 bytes") }
            if k == FunctionDefinition.freezeIdleAnnotation,
                FunctionDefinition(appID: "", appName: "", fnID: "", fnName: "", image: "", annotations: [k: v.jsonText]).freezeIdleMillis == nil
            {
                throw invalid("annotation \"\(k)\" must be a whole number of milliseconds (0 freezes at once, negative never)")
            }
            if k == FunctionDefinition.prewarmAnnotation,
                !(0...FunctionDefinition.maxPrewarm).contains(FunctionDefinition.wholeNumber(v.jsonText) ?? -1)
            {
                throw invalid("annotation \"\(k)\" must be a whole number of instances from 0 to \(FunctionDefinition.maxPrewarm)")
            }
            if k == FunctionDefinition.networkAnnotation {
                let asked = FunctionDefinition(appID: "", appName: "", fnID: "", fnName: "", image: "", annotations: [k: v.jsonText])
                    .requestedNetwork ?? ""
                guard networks.contains(asked) else {
                    throw invalid(
                        "annotation \"\(k)\" must be one of \(networks.sorted().joined(separator: ", ")) on this node, not \(v.jsonText)")
                }
            }
            if k == FunctionDefinition.zygoteAnnotation,
                !FunctionDefinition(appID: "", appName: "", fnID: "", fnName: "", image: "", annotations: [k: v.jsonText]).usesPythonZygote
            {
                throw invalid("annotation \"\(k)\" must be \"python\" (the only zygote there is), not \(v.jsonText)")
            }
            if k == FunctionDefinition.freezeReclaimAnnotation,
                FunctionDefinition(appID: "", appName: "", fnID: "", fnName: "", image: "", annotations: [k: v.jsonText]).freezeReclaim == nil
            {
                throw invalid("annotation \"\(k)\" must be true or false")
            }
        }
        return a
    }

    static func config(_ c: [String: String]) throws(RunnerError) -> [String: String] {
        for k in c.keys where k.isEmpty || k.contains("=") || k.contains("\0") || k.contains(" ") {
            throw invalid("invalid config key \"\(k.prefix(40))\"")
        }
        for (k, v) in c where v.contains("\0") { throw invalid("config value of \(k) contains a NUL byte") }
        return c
    }

    static func source(_ s: String?) throws(RunnerError) -> String {
        guard let s, !s.isEmpty else { throw invalid("Missing Trigger Source") }
        guard s.hasPrefix("/") else { throw invalid("Missing Trigger Source Prefix '/'") }
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: { $0 == ".." || $0 == "." }) { throw invalid("Invalid trigger source: no '.' or '..' segments") }
        if s.utf8.count > 1024 { throw invalid("Invalid trigger source: at most 1024 bytes") }
        return s
    }

    /// Fn's merge for updates (config and annotations alike): new entries replace, an empty
    /// value deletes.
    static func merge<V: EmptiableValue>(_ base: [String: V], _ update: [String: V]?) -> [String: V] {
        var out = base
        for (k, v) in update ?? [:] { out[k] = v.isEmpty ? nil : v }
        return out
    }

    static func invalid(_ message: String) -> RunnerError { RunnerError(.invalidArgument, message, step: "validate") }
}

/// A value that can be empty, which in an update means "delete this key".
protocol EmptiableValue { var isEmpty: Bool { get } }
extension String: EmptiableValue {}
extension JSONValue: EmptiableValue {}
