import ArgumentParser
import CLIOptions
import CgroupDriver
import Dispatch
import FoundationEssentials
import Logging
import NodeNetwork
import OCIImage
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `fnrunner run`: one container, for people and scripts, with Docker's exit-code conventions.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one command in a new container from a rootfs directory.",
        discussion: """
            Exits with the command's exit code. Out of memory: prints "out of memory" and exits 137. \
            A container that cannot start: prints the failing step and exits 125.
            """
    )

    @OptionGroup var runtime: RuntimeOptions

    @OptionGroup var store: StoreOptions

    @Option(name: .customLong("rootfs"), help: "Rootfs directory (read-only). Repeat to stack layers, top first. Without it, the first argument is an image reference.")
    var rootfs: [String] = []

    @Option(help: "Memory limit in MiB (no swap).")
    var memory: Int?

    @Option(help: "CPU limit in millicores (1000 = one CPU).")
    var cpus: Int?

    @Option(help: "Maximum number of processes and threads.")
    var pids: Int?

    @Option(help: "none (own network namespace with loopback), bridge (the node's function bridge, set by FN_FUNCTION_* variables) or host.")
    var network: String = "none"

    @Option(name: .customLong("env"), help: "Environment variable NAME=VALUE (repeatable).")
    var env: [String] = []

    @Option(name: .customLong("workdir"), help: "Working directory inside the container (default: the image's, or /).")
    var workdir: String?

    @Option(help: "UID:GID the command runs as (with an image also NAME[:GROUP]; default: the image's user, or 1000:1000; an image's root user only when given here).")
    var user: String?

    @Flag(name: .customLong("allow-volumes"), help: "Run images that declare volumes (Fn refuses them).")
    var allowVolumes = false

    @Option(help: "Hostname inside the container.")
    var hostname: String?

    @Option(name: .customLong("mount"), help: "Bind mount HOST_DIR:CONTAINER_DIR[:ro] (repeatable).")
    var mounts: [String] = []

    @Option(name: .customLong("freeze-after-ms"), help: "With --keep-frozen-ms: freeze this long after the start.")
    var freezeAfterMillis: Int = 0

    @Option(
        name: .customLong("keep-frozen-ms"),
        help: "Freeze the container (after --freeze-after-ms), keep it frozen this long, report, thaw, let it finish.")
    var keepFrozenMillis: Int?

    @Flag(name: .customLong("no-init"), help: "Make the command PID 1 itself, without fnrunner-init to reap orphans and pass on signals.")
    var noInit = false

    @Flag(help: "Print the cgroup's CPU, memory and pids counters when the command ends.")
    var stats = false

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    mutating func run() async throws {
        let logger = runtime.makeLogger(label: "fnrunner.run")
        let spec: ContainerSpec
        let lease: StoreLease?
        do {
            (spec, lease) = try makeSpec()
        } catch {
            fail("\(error)")
        }
        defer { lease?.release() }
        // From here on an interrupt is held for the container, not left to end this process
        // while the sandbox's cgroups or the container exist.
        let signals = SignalForwarder()
        defer { signals.cancel() }
        let sandbox: Sandbox
        do {
            var configuration = SandboxConfiguration(
                stateDirectory: runtime.stateDirectory, cgroupRoot: runtime.cgroupRoot, logger: logger)
            if spec.network == .bridge {
                configuration.functionNetwork = try FunctionNetworkSettings.fromEnvironment(ProcessInfo.processInfo.environment).bridge
            }
            sandbox = try Sandbox(configuration: configuration)
        } catch {
            fail("\(error)")
        }
        let status = await execute(spec, in: sandbox, signals: signals)
        await sandbox.shutdown()
        Glibc.exit(status)
    }

    private func execute(_ spec: ContainerSpec, in sandbox: Sandbox, signals: SignalForwarder) async -> Int32 {
        let started = MonotonicClock.nowNanos()
        let container: Container
        do {
            container = try sandbox.start(spec)
        } catch {
            report("cannot start container: \(error)")
            return 125
        }
        let startMicros = (MonotonicClock.nowNanos() - started) / 1000
        signals.forward(to: container)

        if let keep = keepFrozenMillis {
            await freezeCycle(container, afterMillis: freezeAfterMillis, holdMillis: keep)
        }
        let exit = await container.wait()
        if stats {
            if let s = try? container.stats() {
                report(
                    "stats: start \(startMicros) us, cpu \(s.cpuUsageNanos / 1000) us, throttled \(s.cpuThrottledPeriods)/\(s.cpuPeriods) periods, memory peak \(s.memoryPeakBytes.map { "\($0 >> 10) KiB" } ?? "n/a"), pids \(s.pidsCurrent)"
                )
            }
        }
        do {
            try await container.close()
        } catch {
            report("cleanup failed: \(error)")
        }
        if exit.outOfMemory { report("out of memory") }
        return exit.shellStatus
    }

    private func freezeCycle(_ container: Container, afterMillis: Int, holdMillis: Int) async {
        try? await Task.sleep(nanoseconds: UInt64(afterMillis) * 1_000_000)
        if container.exit != nil {
            report("the command ended before it could be frozen")
            return
        }
        do {
            let frozen = try container.freeze()
            report("frozen in \(frozen.latencyNanos / 1000) us (state: \(try container.freezerState().rawValue))")
            try? await Task.sleep(nanoseconds: UInt64(holdMillis) * 1_000_000)
            report("still \(try container.freezerState().rawValue) after \(holdMillis) ms")
            let thawed = try container.thaw()
            report("thawed in \(thawed.latencyNanos / 1000) us (state: \(try container.freezerState().rawValue))")
        } catch {
            report("freeze cycle failed: \(error)")
        }
    }

    /// The spec, and for an image the store lease that keeps its layers while the container runs.
    func makeSpec() throws(RunnerError) -> (ContainerSpec, StoreLease?) {
        func invalid(_ m: String) -> RunnerError { RunnerError(.invalidArgument, m, step: "parse arguments") }
        var argv = command
        var spec: ContainerSpec
        var lease: StoreLease?
        if rootfs.isEmpty {
            if argv.first == "--" || argv.isEmpty {
                throw invalid("no rootfs or image given: fnrunner run --rootfs DIR -- CMD, or fnrunner run IMAGE [-- CMD]")
            }
            let reference = argv.removeFirst()
            if argv.first == "--" { argv.removeFirst() }
            (spec, lease) = try imageSpec(reference, command: argv)
        } else {
            if argv.first == "--" { argv.removeFirst() }
            if argv.isEmpty { throw invalid("no command given: fnrunner run --rootfs DIR -- CMD [ARGS...]") }
            spec = ContainerSpec(layers: rootfs, argv: argv)
            let u = user ?? "1000:1000"
            let ids = u.split(separator: ":", omittingEmptySubsequences: false)
            guard ids.count == 2, let uid = UInt32(ids[0]), let gid = UInt32(ids[1]) else {
                throw invalid("--user \"\(u)\" is not UID:GID with numbers in 0..4294967294")
            }
            spec.uid = uid
            spec.gid = gid
        }
        spec.env = Self.merge(spec.env, env)
        if let workdir { spec.workingDirectory = workdir }
        spec.hostname = hostname
        spec.runsInit = !noInit
        guard let net = ContainerSpec.Network(rawValue: network) else {
            throw invalid("--network \"\(network)\" is not one of none, bridge, host")
        }
        spec.network = net
        if let memory {
            guard memory > 0, memory <= 1 << 30 else { throw invalid("--memory \(memory) MiB is out of range") }
            spec.limits.memoryBytes = UInt64(memory) << 20
        }
        spec.limits.cpuMillicores = cpus
        spec.limits.pids = pids
        for m in mounts {
            let parts = m.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 || (parts.count == 3 && (parts[2] == "ro" || parts[2] == "rw")) else {
                throw invalid("--mount \"\(m)\" is not HOST_DIR:CONTAINER_DIR[:ro]")
            }
            spec.bindMounts.append(.init(source: parts[0], target: parts[1], readOnly: parts.count == 3 && parts[2] == "ro"))
        }
        if let k = keepFrozenMillis, k < 0 { throw invalid("--keep-frozen-ms must be >= 0") }
        if freezeAfterMillis < 0 { throw invalid("--freeze-after-ms must be >= 0") }
        spec.stdin = 0
        spec.stdout = 1
        spec.stderr = 2
        return (spec, lease)
    }

    /// The spec an image's config describes, with the command line's overrides.
    func imageSpec(_ reference: String, command: [String]) throws(RunnerError) -> (ContainerSpec, StoreLease) {
        let logger = Logger(label: "fnrunner.run")
        let images = try store.open(logger)
        let record = try store.imageOrPull(reference, images, logger)
        let lease = try images.lease()
        let layers = try images.rootfsLayers(record)
        let process = try ImageProcess.make(
            config: try images.config(of: record), layers: layers, command: command, user: user, allowVolumes: allowVolumes)
        if process.uid == 0 && user == nil {
            throw RunnerError(
                .invalidArgument, "the image \(reference) runs as root (uid 0); pass --user to choose a user (--user 0:0 runs as host root)",
                step: "resolve user")
        }
        var spec = ContainerSpec(layers: layers, argv: process.argv)
        spec.env = process.env
        spec.workingDirectory = process.workingDirectory
        spec.uid = process.uid
        spec.gid = process.gid
        return (spec, lease)
    }

    /// `overrides` (NAME=VALUE) replace same-named entries of `base`.
    static func merge(_ base: [String], _ overrides: [String]) -> [String] {
        let names = Set(overrides.map { $0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0 })
        return base.filter { !names.contains($0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0) } + overrides
    }

    private func report(_ message: String) {
        var line = "fnrunner: " + message + "\n"
        line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    private func fail(_ message: String) -> Never {
        report(message)
        Glibc.exit(125)
    }
}
