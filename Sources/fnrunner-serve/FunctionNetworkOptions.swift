import ArgumentParser
import NodeNetwork
import RunnerOS
import Sandbox

/// Serve's function-network flags; each overrides its FN_* variable (see
/// FunctionNetworkSettings.fromEnvironment), which overrides the default.
struct FunctionNetworkOptions: ParsableArguments {
    @Option(help: "Functions' network unless annotated: bridge (default), none or host (FN_FUNCTION_NETWORK).")
    var functionNetwork: String?

    @Option(help: "The function bridge's name (FN_FUNCTION_BRIDGE; default fnrunner0).")
    var functionBridge: String?

    @Option(help: "The function subnet, e.g. 10.89.0.0/16 (FN_FUNCTION_SUBNET).")
    var functionSubnet: String?

    @Option(help: "Opt-ins, comma-separated: node, functions, metadata, host (FN_FUNCTION_NETWORK_ALLOW).")
    var functionNetworkAllow: String?

    /// Env first, then the flags over it.
    func settings(_ env: [String: String]) throws(RunnerError) -> FunctionNetworkSettings {
        var s = try FunctionNetworkSettings.fromEnvironment(env)
        if let functionNetwork { try s.setDefaultNetwork(functionNetwork, source: "--function-network") }
        if let functionBridge { s.bridge.bridgeName = functionBridge }
        if let functionSubnet { try s.setSubnet(functionSubnet, source: "--function-subnet") }
        if let functionNetworkAllow {
            s.allowHost = false
            s.bridge.allowNode = false
            s.bridge.allowFunctions = false
            s.bridge.allowMetadata = false
            try s.allow(functionNetworkAllow, source: "--function-network-allow")
        }
        try s.validate()
        return s
    }
}
