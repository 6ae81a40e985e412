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
    func bridgeRuns(_ none: ContainerSpec, configuration: SandboxConfiguration, pooledNone: Sandbox?) async throws {
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
            if let pooledNone { try await bridgeCost(none: pooledNone, noneSpec: none, bridge: sandbox, bridgeSpec: spec) }
        }
    }

    /// What the bridge adds to a pooled start, interleaved with `none` starts in one run, each
    /// from a settled pool (as a call that finds its sandbox ready; back-to-back rows also
    /// measure the refill running beside them).
    private func bridgeCost(none: Sandbox, noneSpec: ContainerSpec, bridge: Sandbox, bridgeSpec: ContainerSpec) async throws {
        func settle() { for _ in 0..<2500 where !(none.poolIsSettled && bridge.poolIsSettled) { usleep(1000) } }
        var noneStarts: [UInt64] = []
        var bridgeStarts: [UInt64] = []
        var noneExits: [UInt64] = []
        var bridgeExits: [UInt64] = []
        for _ in 0..<iterations {
            settle()
            let n = try await startToExit(none, noneSpec)
            settle()
            let b = try await startToExit(bridge, bridgeSpec)
            noneStarts.append(n.started)
            noneExits.append(n.exited)
            bridgeStarts.append(b.started)
            bridgeExits.append(b.exited)
        }
        row("start (clone → exec'd), pooled, settled pool, none (interleaved)", noneStarts)
        row("start (clone → exec'd), pooled, settled pool, bridge (interleaved)", bridgeStarts)
        row("start-to-exit, pooled, settled pool, none (interleaved)", noneExits)
        row("start-to-exit, pooled, settled pool, bridge (interleaved)", bridgeExits)
        func rounded(_ v: Double) -> Double { Double(Int((v / 100).rounded())) / 10 }
        print("| the bridge's cost to a pooled start: difference of the medians (start; start-to-exit) | | \(rounded(median(bridgeStarts) - median(noneStarts))); \(rounded(median(bridgeExits) - median(noneExits))) | | |")
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
