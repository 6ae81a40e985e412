import Logging
import NativeRuntime
import OCIImage
import Runner
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How many frozen hot containers one runner holds, and what each costs: `count` functions each
/// called once with freezing at once, so `count` containers sit frozen; then the runner's own
/// memory per container, the host's memory per container, the runner's CPU while they all
/// sit frozen, and a thaw + call of random ones. (Fn with Docker: ~300 per 63 GB node.)
struct DensityBench {
    let sandbox: Sandbox
    let images: ImageStore
    let image: String
    let stateDirectory: String
    let count: Int
    /// How long to watch the runner's CPU while everything is frozen.
    var idleSeconds = 10

    func run() async throws {
        var config = AgentConfiguration()
        config.freezeIdleMillis = 0
        config.hotStartTimeoutMillis = 30_000
        let driver = try NativeDriver(configuration: .init(), sandbox: sandbox, store: images)
        let memoryMB: UInt64 = 16
        let agent = Agent(
            configuration: config, driver: driver,
            tracker: ResourceTracker(totalMemoryBytes: UInt64(count + 16) * (memoryMB << 20), totalCPUMillicores: 2000))
        @Sendable func fn(_ i: Int) -> FunctionDefinition {
            FunctionDefinition(
                appID: "density", appName: "density", fnID: "d\(i)", fnName: "d\(i)", image: image, memoryMB: memoryMB, timeoutSeconds: 30,
                idleTimeoutSeconds: 3600)
        }
        let request = FunctionRequest(body: Array("World".utf8))
        let count = self.count
        let idleSeconds = self.idleSeconds
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await agent.run() }
            group.addTask {
                do {
                    _ = try await agent.submit(fn(-1), request)  // everything loaded once
                    try await Self.waitFrozen(agent, 1)
                    let rss0 = Self.status("VmRSS:"), avail0 = Self.meminfo("MemAvailable:")
                    let t0 = MonotonicClock.nowNanos()
                    for i in 0..<count { _ = try await agent.submit(fn(i), request) }
                    let started = MonotonicClock.nowNanos() - t0
                    try await Self.waitFrozen(agent, count + 1)
                    try await Task.sleep(for: .seconds(1))
                    let rss1 = Self.status("VmRSS:"), avail1 = Self.meminfo("MemAvailable:")
                    let cpu0 = Self.processCPUNanos()
                    try await Task.sleep(for: .seconds(idleSeconds))
                    let cpu1 = Self.processCPUNanos()
                    var thaws: [UInt64] = []
                    for _ in 0..<min(200, count) {
                        let i = Int.random(in: 0..<count)
                        try await Task.sleep(for: .milliseconds(2))
                        let t = MonotonicClock.nowNanos()
                        _ = try await agent.submit(fn(i), request)
                        thaws.append(MonotonicClock.nowNanos() - t)
                    }
                    thaws.sort()
                    let perRunner = Double(rss1 - min(rss0, rss1)) / Double(count)
                    let perHost = Double(avail0 - min(avail0, avail1)) / Double(count)
                    print("| frozen hot containers held (one per function, \(memoryMB) MiB each) | \(count) |")
                    print("| time to start and freeze them one after another | \(Self.fixed(Double(started) / 1e9, 1)) s (\(Self.fixed(Double(started) / 1e6 / Double(count), 1)) ms each) |")
                    print("| runner RSS per container (VmRSS, \(rss0) → \(rss1) KiB) | \(Self.fixed(perRunner, 1)) KiB |")
                    print("| host memory per frozen container (MemAvailable, \(avail0) → \(avail1) KiB) | \(Self.fixed(perHost, 0)) KiB |")
                    print("| runner CPU while all are frozen (\(idleSeconds) s) | \(Self.fixed(Double(cpu1 - cpu0) / 1e6 / Double(idleSeconds), 2)) ms/s |")
                    print("| thaw + call of a random frozen one (n=\(thaws.count)): p50 / p99 | \(thaws[thaws.count / 2] / 1000) / \(thaws[max(0, Int(Double(thaws.count) * 0.99) - 1)] / 1000) µs |")
                    let t1 = MonotonicClock.nowNanos()
                    await agent.shutdown()
                    print("| ending them all (shutdown) | \(Self.fixed(Double(MonotonicClock.nowNanos() - t1) / 1e9, 1)) s |")
                } catch {
                    await agent.shutdown()
                    throw error
                }
            }
            try await group.waitForAll()
        }
    }

    /// Waits until `n` containers sit frozen.
    static func waitFrozen(_ agent: Agent, _ n: Int) async throws {
        for _ in 0..<6000 {
            if agent.containers.filter({ $0.frozenForMillis != nil }).count >= n { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw RunnerError(.timeout, "\(n) containers did not all freeze within 60 s", step: "density bench")
    }

    /// A KiB figure from /proc/self/status.
    static func status(_ key: String) -> UInt64 { field(in: "/proc/self/status", key) }
    static func meminfo(_ key: String) -> UInt64 { field(in: "/proc/meminfo", key) }

    static func field(in path: String, _ key: String) -> UInt64 {
        guard let text = try? FileSystem.read(path) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return UInt64(line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
        }
        return 0
    }

    /// `value` with `digits` decimals (no Foundation in this binary).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int((value * scale).rounded())
        if digits == 0 { return String(n) }
        let whole = n / Int(scale), frac = abs(n % Int(scale))
        let f = String(frac)
        return (n < 0 && whole == 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: digits - f.count) + f
    }

    static func processCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
