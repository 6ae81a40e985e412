import NodeNetwork
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#endif

extension BenchCommand {
    /// The same start rows on the function bridge, direct and pooled, in the namespace
    /// `--bridge-netns` names (scripts/bench makes one, so the host's own network is never
    /// touched): what a veth, an address and a route cost a start, and what the pool takes off.
    func bridgeRuns(_ none: ContainerSpec, configuration: SandboxConfiguration) async throws {
        guard let bridgeNamespace else { return }
        var spec = none
        spec.network = .bridge
        var direct = configuration
        direct.functionNetwork = FunctionNetworkConfiguration(nodeNamespacePath: bridgeNamespace)
        // One sandbox at a time: each makes the bridge and removes it again when it shuts down.
        try await withSandbox(direct) { try await startRuns($0, spec, label: ", bridge") }
        guard poolSize > 0 else { return }
        var pooled = direct
        pooled.poolSize = poolSize
        pooled.poolNetwork = .bridge
        try await withSandbox(pooled) { sandbox in
            for _ in 0..<2500 where !sandbox.poolIsSettled { usleep(2000) }
            try await startRuns(sandbox, spec, label: ", bridge, pooled")
        }
    }

    private func withSandbox(_ configuration: SandboxConfiguration, _ body: (Sandbox) async throws -> Void) async throws {
        let sandbox = try Sandbox(configuration: configuration)
        do {
            try await body(sandbox)
        } catch {
            await sandbox.shutdown()
            throw error
        }
        await sandbox.shutdown()
    }
}
