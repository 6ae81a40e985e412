import Logging
import LoopExecutors
import NIOPosix
import NativeRuntime
import OCIImage
import Runner
import RunnerOS
import Sandbox

extension BenchCommand {
    /// The raw call's round trip on a kept-alive connection, and thaw + call after a freeze.
    func hotPath(_ sandbox: Sandbox, _ base: ContainerSpec) async throws {
        let raw = try await RawHelloStream.start(sandbox, base, stateDirectory: runtime.stateDirectory)
        var hot: [UInt64] = []
        var thawed: [UInt64] = []
        do {
            try await withTaskExecutorPreference(Self.callLoop) {
                for _ in 0..<iterations { hot.append(try await Self.timed { try await raw.call() }) }
                for _ in 0..<iterations {
                    _ = try raw.container.freeze()
                    thawed.append(
                        try await Self.timed {
                            _ = try raw.container.thaw()
                            try await raw.call()
                        })
                }
            }
        } catch {
            await raw.close()
            throw error
        }
        await raw.close()
        row("hot call: HTTP/1.1 over the function's unix socket (hello-stream, kept alive)", hot)
        row("thaw + the same call (frozen between calls)", thawed)
    }

    /// Where the timed hot calls run: on the event loop the function sockets are read on, as
    /// serve's edges run them, so the bench measures serve's path of a call.
    static let callLoop = EventLoopTaskExecutor(MultiThreadedEventLoopGroup.singleton.next())

    static func timed(_ body: () async throws -> Void) async rethrows -> UInt64 {
        let t0 = MonotonicClock.nowNanos()
        try await body()
        return MonotonicClock.nowNanos() - t0
    }

    /// Calls through the agent: hot (a kept idle container), thaw + call (frozen at once after
    /// each call), and cold (a new slot key each time, so every call launches a container).
    ///
    /// With hello-stream in `--rootfs`, each hot call is paired with a raw call to a container
    /// of `raw`'s, in alternating order, so that what the agent adds to the raw round trip is
    /// measured on the same moments of the machine rather than minutes apart.
    ///
    /// Hot and thawed calls reuse one definition and its slot key, as the agent gets them from
    /// its edges (serve's definition cache, the LB's slot hash): making the key is not the
    /// agent's cost per call.
    func agentCalls(_ sandbox: Sandbox, image: String, raw rawSandbox: Sandbox, rawSpec: ContainerSpec) async throws {
        let images = try store.open(Logger(label: "fnrunner.bench"))
        _ = try images.image(image)
        func run(freezeIdleMillis: Int, onLoop: Bool = false, _ body: @escaping @Sendable (Agent) async throws -> [UInt64]) async throws -> [UInt64] {
            var config = AgentConfiguration()
            config.freezeIdleMillis = freezeIdleMillis
            let driver = try NativeDriver(configuration: .init(), sandbox: sandbox, store: images)
            let agent = Agent(
                configuration: config, driver: driver, tracker: ResourceTracker(totalMemoryBytes: 4 << 30, totalCPUMillicores: 2000))
            return try await withThrowingTaskGroup(of: [UInt64]?.self) { group in
                group.addTask {
                    await agent.run()
                    return nil
                }
                group.addTask(executorPreference: onLoop ? Self.callLoop : nil) {
                    do {
                        let samples = try await body(agent)
                        await agent.shutdown()
                        return samples
                    } catch {
                        await agent.shutdown()
                        throw error
                    }
                }
                var samples: [UInt64] = []
                for try await r in group { if let r { samples = r } }
                return samples
            }
        }
        let n = iterations
        @Sendable func fn(_ key: String) -> FunctionDefinition {
            FunctionDefinition(appID: "bench", appName: "bench", fnID: "hello", fnName: "hello", image: image, memoryMB: 64, fnConfig: ["K": key])
        }
        let request = FunctionRequest(body: Array("World".utf8))
        @Sendable func call(_ agent: Agent, _ f: FunctionDefinition, _ key: SlotKey) async throws {
            _ = try await agent.submit(try agent.makeCall(f, request, slotKey: key))
        }
        let (hotFn, thawFn) = (fn("hot"), fn("thaw"))
        let (hotKey, thawKey) = (hotFn.slotKey, thawFn.slotKey)
        let raw = FileSystem.exists(rootfs + "/bin/hello-stream")
            ? try await RawHelloStream.start(rawSandbox, rawSpec, stateDirectory: runtime.stateDirectory) : nil
        let paired: [UInt64]
        do {
            paired = try await run(freezeIdleMillis: -1, onLoop: true) { agent in
                for _ in 0..<20 { try await call(agent, hotFn, hotKey) }
                // With a raw container: (agent, raw) per round, whichever of the two ran first.
                var t: [UInt64] = []
                for i in 0..<n {
                    var direct: UInt64?
                    if let raw, i % 2 == 1 { direct = try await Self.timed { try await raw.call() } }
                    t.append(try await Self.timed { try await call(agent, hotFn, hotKey) })
                    if let raw, i % 2 == 0 { direct = try await Self.timed { try await raw.call() } }
                    if let direct { t.append(direct) }
                }
                return t
            }
        } catch {
            await raw?.close()
            throw error
        }
        await raw?.close()
        let thawed = try await run(freezeIdleMillis: 0) { agent in
            try await call(agent, thawFn, thawKey)
            var t: [UInt64] = []
            for _ in 0..<n {
                try await Task.sleep(for: .milliseconds(2))  // let the container freeze
                t.append(try await Self.timed { try await call(agent, thawFn, thawKey) })
            }
            return t
        }
        let cold = try await run(freezeIdleMillis: -1) { agent in
            var t: [UInt64] = []
            for i in 0..<min(n, 100) { t.append(try await Self.timed { _ = try await agent.submit(fn("cold\(i)"), request) }) }
            return t
        }
        if raw != nil {
            let hot = stride(from: 0, to: paired.count, by: 2).map { paired[$0] }
            let direct = stride(from: 1, to: paired.count, by: 2).map { paired[$0] }
            row("agent: hot call (\(image)), paired with a raw call", hot)
            row("the raw call of each pair: hello-stream over its unix socket", direct)
            let pairs = median(zip(hot, direct).map { Double($0) - Double($1) })
            let cost = (median(hot) - median(direct)) / 1000
            print(
                "| the agent's cost over the raw call: difference of the medians; median of the pairs' differences | | "
                    + "\(Self.tenths(cost)); \(Self.tenths(pairs / 1000)) | | |")
        } else {
            row("agent: hot call (\(image))", paired)
        }
        row("agent: thaw + call (frozen after every call)", thawed)
        row("agent: cold call (launch a container, then call\(sandbox.pooledSandboxesReady > 0 ? ", pool of \(poolSize)" : ""))", cold)
    }

    static func tenths(_ v: Double) -> String { String(Double(Int((v * 10).rounded())) / 10) }
}
