import CgroupDriver
import Logging
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A private state directory and cgroup root for one test, removed afterwards even when the
/// test fails, so tests can run in parallel and leave nothing behind.
public struct TestEnvironment: Sendable {
    public let stateDirectory: String
    public let cgroupRoot: String

    public init(_ label: String = "t") {
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        stateDirectory = "/tmp/fnrunner-test-state-\(label)-\(tag)"
        cgroupRoot = "fnrunner-test-\(label)-\(tag)"
    }

    public var configuration: SandboxConfiguration { configuration(poolSize: Host.sandboxPoolSize) }

    public func configuration(poolSize: Int) -> SandboxConfiguration {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return SandboxConfiguration(stateDirectory: stateDirectory, cgroupRoot: cgroupRoot, logger: logger, poolSize: poolSize)
    }

    /// Every cgroup directory (any hierarchy) at or below this environment's root.
    public func cgroupDirectories() -> [String] {
        guard let layout = Host.layout else { return [] }
        var mounts = Set(layout.v1Mounts.values)
        if let v2 = layout.v2Mount { mounts.insert(v2) }
        var found: [String] = []
        func walk(_ dir: String) {
            guard FileSystem.isDirectory(dir) else { return }
            found.append(dir)
            for sub in (try? FileSystem.subdirectories(dir)) ?? [] { walk(dir + "/" + sub) }
        }
        for m in mounts.sorted() { walk(m + "/" + cgroupRoot) }
        return found
    }

    /// The cgroup directories that belong to containers or to the runner's levels: the pool's
    /// ready sandboxes are left out, after waiting (bounded) until the pool is full and idle.
    public func settledCgroupDirectories(_ sandbox: Sandbox) async -> [String] {
        try? await waitUntil { sandbox.poolIsSettled }
        let pooled = Set(sandbox.pooledCgroups.flatMap(\.allPaths))
        return cgroupDirectories().filter { !pooled.contains($0) }
    }

    /// Kills and removes whatever is left (after a failed test), deepest first.
    public func cleanUp() {
        for dir in cgroupDirectories().sorted(by: { $0.count > $1.count }) {
            if FileSystem.exists(dir + "/cgroup.kill") { try? FileSystem.write(dir + "/cgroup.kill", "1") }
            if FileSystem.exists(dir + "/freezer.state") { try? FileSystem.write(dir + "/freezer.state", "THAWED") }
            for pid in CgroupFileFormat.pids((try? FileSystem.read(dir + "/cgroup.procs")) ?? "") { kill(pid, SIGKILL) }
            for _ in 0..<200 {
                if rmdir(dir) == 0 || errno == ENOENT { break }
                usleep(5000)
            }
        }
        for m in Host.mounts(containing: stateDirectory).sorted(by: { $0.count > $1.count }) { umount2(m, Int32(MNT_DETACH)) }
        try? FileSystem.removeTree(stateDirectory)
    }
}

/// Runs `body` with a fresh sandbox in a fresh environment; always shuts down and cleans up.
/// Holds the test gate shared unless `exclusive`. The pool size is Host.sandboxPoolSize unless
/// `poolSize` is given.
public func withSandbox<T>(
    _ label: String = "t", exclusive: Bool = false, poolSize: Int? = nil, _ body: (Sandbox, TestEnvironment) async throws -> T
) async throws -> T {
    if exclusive { return try await withExclusiveGate { try await sandboxed(label, poolSize, body) } }
    return try await withSharedGate { try await sandboxed(label, poolSize, body) }
}

private func sandboxed<T>(_ label: String, _ poolSize: Int?, _ body: (Sandbox, TestEnvironment) async throws -> T) async throws -> T {
    let env = TestEnvironment(label)
    defer { env.cleanUp() }
    let sandbox = try Sandbox(configuration: env.configuration(poolSize: poolSize ?? Host.sandboxPoolSize))
    do {
        let result = try await body(sandbox, env)
        await sandbox.shutdown()
        return result
    } catch {
        await sandbox.shutdown()
        throw error
    }
}
