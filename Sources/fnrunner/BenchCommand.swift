import ArgumentParser
import CLIOptions
import CgroupDriver
import Logging
import NIOCore
import NIOPosix
import OCIImage
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `fnrunner bench`: the in-process cost of the Sandbox API itself, without process start-up of
/// a CLI: start-to-exit of a container, teardown, and freeze/thaw latency. `scripts/bench` runs it
/// next to crun and runc.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure in-process container start, teardown and freeze/thaw latency."
    )

    @OptionGroup var runtime: RuntimeOptions

    @Option(name: .customLong("rootfs"), help: "Rootfs directory with /bin/true and /bin/sleep.")
    var rootfs: String

    @Option(help: "none (own network namespace, the default for functions) or host.")
    var network: String = "none"

    @Option(
        name: .customLong("bridge-netns"),
        help: "A network namespace (e.g. /run/netns/NAME) to measure bridge starts in: the bridge, its rules and veths go there.")
    var bridgeNamespace: String?

    @Option(help: "Also measure preparing a container rootfs from this (already pulled) image.")
    var image: String?

    @OptionGroup var store: StoreOptions

    @Option(name: .customLong("agent-image"), help: "An http-stream function image (e.g. hello-stream) to measure calls through the agent.")
    var agentImage: String?

    @Option(help: "Iterations per measurement.")
    var iterations = 200

    @Option(help: "With --agent-image: hold this many frozen hot containers and measure what each costs (0 skips it).")
    var density = 0

    @Option(name: .customLong("gap-ms"), help: "Idle gap before each start in the sporadic run (0 skips it).")
    var gapMillis = 50

    @Option(name: .customLong("gap-iterations"), help: "Iterations of the sporadic run.")
    var gapIterations = 40

    @Option(name: .customLong("pool-size"), help: "Sandbox pool of the pooled runs and of the agent's calls (0 skips the pooled runs).")
    var poolSize = 4

    mutating func run() async throws {
        // One event loop, as serve has on a small node: the timed calls run on it and the
        // function sockets are read on it (`callLoop`).
        NIOSingletons.groupLoopCountSuggestion = 1
        let logger = runtime.makeLogger(label: "fnrunner.bench")
        let configuration = SandboxConfiguration(stateDirectory: runtime.stateDirectory, cgroupRoot: runtime.cgroupRoot, logger: logger)
        var pooledConfiguration = configuration
        pooledConfiguration.poolSize = poolSize
        let sandbox = try Sandbox(configuration: configuration)
        let pooled = try Sandbox(configuration: pooledConfiguration)
        do {
            try await measure(sandbox, pooled: pooled)
        } catch {
            await pooled.shutdown()
            await sandbox.shutdown()
            throw error
        }
        await pooled.shutdown()
        await sandbox.shutdown()
    }

    /// Starts to exit, back to back and after idle gaps, counting how many came from the pool.
    func startRuns(_ sandbox: Sandbox, _ spec: ContainerSpec, label: String) async throws {
        let counted = sandbox.startCounts
        for _ in 0..<5 { _ = try await startToExit(sandbox, spec) }  // warm-up
        var starts: [UInt64] = []
        var exits: [UInt64] = []
        var closes: [UInt64] = []
        for _ in 0..<iterations {
            let t = try await startToExit(sandbox, spec)
            starts.append(t.started)
            exits.append(t.exited)
            closes.append(t.closed)
        }
        let tight = sandbox.startCounts
        row("start (clone → exec'd)\(label)", starts)
        row("start-to-exit (start → init reaped)\(label)", exits)
        row("teardown (close: cgroup removed)\(label)", closes)
        var note = ""
        if gapMillis > 0 && gapIterations > 0 {
            var sporadic: [UInt64] = []
            for _ in 0..<gapIterations {
                usleep(UInt32(gapMillis) * 1000)
                sporadic.append(try await startToExit(sandbox, spec).exited)
            }
            row("start-to-exit after \(gapMillis) ms idle\(label)", sporadic)
            let gap = sandbox.startCounts
            note = "; after idle: \(gap.pooled - tight.pooled) of \(gapIterations) from the pool"
        }
        if !label.isEmpty {
            print("| (\(label.dropFirst(2))) back to back: \(tight.pooled - counted.pooled) of \(iterations + 5) from the pool\(note) | | | | |")
        }
    }

    /// /bin/true under the bench's limits, on `--network`.
    func benchSpec() throws(RunnerError) -> ContainerSpec {
        var spec = ContainerSpec(layers: [rootfs], argv: ["/bin/true"])
        spec.limits = ResourceLimits(memoryBytes: 128 << 20, cpuMillicores: 500, pids: 64)
        guard let net = ContainerSpec.Network(rawValue: network), net != .bridge else {
            throw RunnerError(.invalidArgument, "--network \"\(network)\" is not one of none, host (bridge rows: --bridge-netns)")
        }
        spec.network = net
        return spec
    }

    private func measure(_ sandbox: Sandbox, pooled: Sandbox) async throws {
        let spec = try benchSpec()
        print("host: \(sandbox.driver.layout)")
        print("container: /bin/true, memory 128 MiB, cpu 500m, pids 64, network \(network), seccomp on\n")
        print("| measurement | n | median µs | p99 µs | min µs |")
        print("|---|---|---|---|---|")

        try await startRuns(sandbox, spec, label: "")
        try await initCost(sandbox, spec)
        if poolSize > 0 {
            for _ in 0..<2500 where !pooled.poolIsSettled { usleep(2000) }
            try await startRuns(pooled, spec, label: ", pooled")
        }
        try await bridgeRuns(spec, configuration: sandbox.configuration, pooledNone: poolSize > 0 ? pooled : nil)

        var sleeper = spec
        sleeper.argv = ["/bin/sleep", "3600"]
        let c = try sandbox.start(sleeper)
        var freezes: [UInt64] = []
        var thaws: [UInt64] = []
        for _ in 0..<iterations {
            freezes.append(try c.freeze().latencyNanos)
            thaws.append(try c.thaw().latencyNanos)
        }
        try await c.close()
        row("freeze (write → kernel says frozen)", freezes)
        row("thaw (write → kernel says thawed)", thaws)

        if FileSystem.exists(rootfs + "/bin/hello-stream") { try await hotPath(sandbox, spec) }

        if let agentImage { try await agentCalls(poolSize > 0 ? pooled : sandbox, image: agentImage, raw: sandbox, rawSpec: spec) }
        if let agentImage, density > 0 {
            print("\n| density (\(agentImage)) | |\n|---|---|")
            let images = try store.open(Logger(label: "fnrunner.bench"))
            try await DensityBench(sandbox: sandbox, images: images, image: agentImage, stateDirectory: runtime.stateDirectory, count: density).run()
        }

        if let image {
            let images = try store.open(Logger(label: "fnrunner.bench"))
            let record = try images.image(image)
            var prepares: [UInt64] = []
            var starts: [UInt64] = []
            for _ in 0..<iterations {
                let t0 = MonotonicClock.nowNanos()
                let layers = try images.rootfsLayers(record)
                prepares.append(MonotonicClock.nowNanos() - t0)
                var s = spec
                s.layers = layers + [rootfs]
                starts.append(try await startToExit(sandbox, s).exited)
            }
            row("prepare rootfs of \(record.name) (\(record.layers.count) layers, already unpacked)", prepares)
            row("start-to-exit of /bin/true on that image's overlay + the busybox layer", starts)
        }
    }

    /// What fnrunner-init as PID 1 adds to a start-to-exit: the same container with and without
    /// it, interleaved so that drift on the machine lands on both equally.
    private func initCost(_ sandbox: Sandbox, _ spec: ContainerSpec) async throws {
        var bare = spec
        bare.runsInit = false
        var with: [UInt64] = []
        var without: [UInt64] = []
        for _ in 0..<iterations {
            with.append(try await startToExit(sandbox, spec).exited)
            without.append(try await startToExit(sandbox, bare).exited)
        }
        row("start-to-exit, /bin/true under fnrunner-init (interleaved)", with)
        row("start-to-exit, /bin/true as PID 1, no init (interleaved)", without)
        let cost = (median(with) - median(without)) / 1000
        print("| init's cost: difference of the medians | | \(Self.tenths(cost)) | | |")
    }

    func median(_ samples: [UInt64]) -> Double { median(samples.map { Double($0) }) }

    func median(_ samples: [Double]) -> Double {
        let s = samples.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    func startToExit(_ sandbox: Sandbox, _ spec: ContainerSpec) async throws -> (started: UInt64, exited: UInt64, closed: UInt64) {
        let t0 = MonotonicClock.nowNanos()
        let c = try sandbox.start(spec)
        let t1 = MonotonicClock.nowNanos()
        let exit = await c.wait()
        let t2 = MonotonicClock.nowNanos()
        try await c.close()
        let t3 = MonotonicClock.nowNanos()
        if exit.process != .exited(0) { throw RunnerError(.containerStart, "benchmark container \(exit)") }
        return (t1 - t0, t2 - t0, t3 - t2)
    }

    func row(_ name: String, _ samples: [UInt64]) {
        let s = samples.sorted()
        let median = median(samples)
        let p99 = s[max(0, Int((0.99 * Double(s.count)).rounded(.up)) - 1)]
        func us(_ ns: Double) -> String {
            let v = ns / 1000
            return v >= 100 ? String(Int(v.rounded())) : String(Double(Int(v * 10)) / 10)
        }
        print("| \(name) | \(s.count) | \(us(median)) | \(us(Double(p99))) | \(us(Double(s[0]))) |")
    }
}
