import CCap
import RunnerOS

/// Capability names to the bit mask the child keeps, resolved with libcap in the runner (the
/// child cannot call libcap: it allocates).
public enum Capabilities {
    /// The highest capability number the running kernel knows.
    public static var lastCapability: Int32 {
        Int32(cap_max_bits()) - 1
    }

    /// "CAP_NET_BIND_SERVICE" or "net_bind_service" to a mask; unknown names are an error.
    public static func mask(_ names: [String]) throws(RunnerError) -> UInt64 {
        var mask: UInt64 = 0
        for name in names {
            var value: cap_value_t = 0
            let normalized = name.lowercased().hasPrefix("cap_") ? name.lowercased() : "cap_" + name.lowercased()
            if cap_from_name(normalized, &value) != 0 || value < 0 || value > 63 {
                throw RunnerError(.invalidArgument, "unknown capability \"\(name)\"", step: "resolve capabilities")
            }
            mask |= 1 << UInt64(value)
        }
        return mask
    }
}
