/// Fn's FN_* settings read from an environment: an absent or empty value keeps the default, and
/// a value that does not parse is an error naming the variable (never silently the default).
public struct FnEnvironment: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String]) { self.values = values }

    /// The trimmed value, nil when absent or empty.
    public func string(_ name: String) -> String? {
        guard let v = values[name]?.trimmed, !v.isEmpty else { return nil }
        return v
    }

    /// An integer of at least `minimum` (when given).
    public func int(_ name: String, default keep: Int, minimum: Int? = nil) throws(RunnerError) -> Int {
        guard let text = string(name) else { return keep }
        guard let v = Int(text), v >= (minimum ?? .min) else {
            let range = minimum.map { $0 == 0 ? "a non-negative integer" : "an integer of at least \($0)" } ?? "an integer"
            throw RunnerError(.invalidArgument, "\(name) must be \(range), not \"\(text)\"", step: "read configuration")
        }
        return v
    }

    public func bool(_ name: String, default keep: Bool) throws(RunnerError) -> Bool {
        guard let text = string(name)?.lowercased() else { return keep }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw RunnerError(.invalidArgument, "\(name) must be true or false, not \"\(text)\"", step: "read configuration")
        }
    }
}
