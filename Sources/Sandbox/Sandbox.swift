import CRunnerShim
import CgroupDriver
import Logging
import NodeNetwork
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The native container driver: starts processes from a read-only rootfs in fresh namespaces
/// under cgroup limits, and owns everything it creates until it is closed.
///
/// One `Sandbox` is one runner instance: it holds a lock in the state directory for as long as
/// it lives, so that a later runner can tell whether the cgroups it finds belong to a live
/// runner or to one that crashed (and must be reclaimed, which `init` does).
public final class Sandbox: Sendable {
    public let configuration: SandboxConfiguration
    public let driver: CgroupDriver
    public let instanceID: String
    /// What this sandbox reclaimed from crashed runners when it opened.
    public let recovered: RecoveryReport
    let logger: Logger
    /// CPUs this host has (a container's CPU limit must fit).
    public let hostCPUs: Int
    let seccomp: SeccompProfile
    let lastCapability: Int32
    let lockFD: Int32
    let paths: StatePaths
    /// Ready-made sandboxes (nil when `poolSize` is 0).
    let pool: SandboxPool?
    /// The node's bridge for `bridge` containers (nil when none is configured).
    public let functionNetwork: BridgeNetwork?
    /// What `bridge` containers are called by default: the node's hostname, as Fn sets it.
    let nodeHostname: String

    private struct State {
        var nextContainer: UInt64 = 1
        var live: [String: Container] = [:]
        var shutDown = false
        var starts = StartCounts()
    }
    private let state = Mutex(State())

    struct StatePaths {
        let root: String
        /// An empty directory: every container mounts its rootfs over it in its own mount namespace.
        var mountTarget: String { root + "/rootfs" }
        /// proc, dev, sys, tmp: laid over a rootfs that lacks those mount points.
        var skeleton: String { root + "/skeleton" }
        var instances: String { root + "/instances" }
        func instance(_ id: String) -> String { instances + "/" + id }
        func lock(_ id: String) -> String { instance(id) + "/lock" }
    }

    /// Raises this process's soft limit on open files to its hard limit (the containers get
    /// their own limit, `ContainerSpec.rlimits`, in the child).
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Opens a runner instance: detects the cgroup layout, reclaims what crashed runners left
    /// under the same state directory and cgroup root, and prepares this instance's cgroups.
    public init(configuration: SandboxConfiguration = SandboxConfiguration()) throws(RunnerError) {
        self.configuration = configuration
        self.logger = configuration.logger
        let layout: CgroupLayout
        if let given = configuration.layout { layout = given } else { layout = try CgroupLayout.detect() }
        self.driver = try CgroupDriver(layout: layout, rootName: configuration.cgroupRoot, logger: configuration.logger)
        self.hostCPUs = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        self.seccomp = try SeccompProfile.makeDefault()
        self.lastCapability = Capabilities.lastCapability
        self.paths = StatePaths(root: configuration.stateDirectory)
        self.instanceID = Self.makeInstanceID()
        // Each live container holds several descriptors here (pidfd, pipes, cgroup counters, its
        // function's socket): 1024, a common soft limit, would cap a node at ~100 containers.
        Self.raiseOpenFileLimit()

        try FileSystem.makeDirectories(paths.instances, mode: 0o700)
        try FileSystem.makeDirectory(paths.mountTarget, mode: 0o755)
        try FileSystem.makeDirectory(paths.skeleton, mode: 0o755)
        for dir in ["proc", "dev", "sys", "tmp"] { try FileSystem.makeDirectory(paths.skeleton + "/" + dir) }

        // Take our lock before anything of ours exists in cgroupfs, so no other runner's
        // recovery can ever see our cgroups without a held lock. The lock file appears under its
        // name already locked (made and locked under a temporary name, then renamed), so another
        // runner never finds it unlocked while we live; a lock-less directory is young (skipped)
        // or left by a runner that died before this point.
        try FileSystem.makeDirectory(paths.instance(instanceID), mode: 0o700)
        let temporary = paths.instance(instanceID) + "/lock.tmp"
        let fd = open(temporary, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw .system("open", errno: errno, "cannot create the instance lock \(temporary)") }
        let rc = rn_try_lock(fd)
        if rc < 0 {
            close(fd)
            throw .system("flock", errno: -rc, "cannot lock \(temporary)")
        }
        if rename(temporary, paths.lock(instanceID)) != 0 {
            let e = errno
            close(fd)
            throw .system("rename", errno: e, "cannot publish the instance lock \(paths.lock(instanceID))")
        }
        self.lockFD = fd

        do throws(RunnerError) {
            self.recovered = try Self.recover(driver: driver, paths: paths, ownInstance: instanceID, logger: logger)
            try driver.prepareInstance(instanceID)
            if configuration.poolNetwork == .host {
                throw RunnerError(.invalidArgument, "the sandbox pool prepares namespaces for none or bridge, not host", step: "open sandbox")
            }
            if configuration.poolNetwork == .bridge && configuration.functionNetwork == nil {
                throw RunnerError(.invalidArgument, "a pool for bridge starts needs a function network", step: "open sandbox")
            }
            if let net = configuration.functionNetwork {
                let paths = paths
                self.functionNetwork = try BridgeNetwork(
                    configuration: net, stateDirectory: paths.root, runtimeDirectory: paths.instance(instanceID) + "/network",
                    instanceID: instanceID, isLive: { owner in (try? Self.isLive(paths.lock(owner))) ?? true }, logger: logger)
            } else {
                self.functionNetwork = nil
            }
        } catch {
            _ = try? driver.delete(driver.instanceSet(instanceID))
            driver.removeRootIfEmpty()
            try? FileSystem.removeTree(paths.instance(instanceID))
            close(fd)
            throw error
        }
        self.nodeHostname = HostName.current ?? "localhost"
        self.pool =
            configuration.poolSize > 0
            ? SandboxPool(
                capacity: configuration.poolSize, driver: driver, instanceID: instanceID,
                network: configuration.poolNetwork == .bridge ? functionNetwork : nil, hostname: nodeHostname, logger: logger) : nil
        logger.debug(
            "sandbox opened",
            metadata: ["instance": "\(instanceID)", "cgroup.layout": "\(layout)", "state": "\(paths.root)"])
    }

    static func makeInstanceID() -> String {
        let r = UInt64.random(in: 0...UInt64.max)
        let hex = String(r, radix: 16)
        return "i" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Containers started and not yet closed.
    public var liveContainers: [Container] { state.withLock { Array($0.live.values) } }

    func nextName() -> String {
        state.withLock { s in
            defer { s.nextContainer += 1 }
            return "c\(s.nextContainer)"
        }
    }

    func register(_ c: Container) throws(RunnerError) {
        let ok = state.withLock { s -> Bool in
            if s.shutDown { return false }
            s.live[c.name] = c
            return true
        }
        if !ok { throw RunnerError(.invalidState, "the sandbox is shut down", step: "start container") }
    }

    /// How many starts came from the pool and how many took the direct path.
    public struct StartCounts: Sendable, Equatable {
        public var pooled = 0
        public var direct = 0

        public init(pooled: Int = 0, direct: Int = 0) {
            self.pooled = pooled
            self.direct = direct
        }
    }

    public var startCounts: StartCounts { state.withLock { $0.starts } }

    func countStart(pooled: Bool) {
        state.withLock { s in
            if pooled { s.starts.pooled += 1 } else { s.starts.direct += 1 }
        }
    }

    /// Sandboxes ready in the pool now (0 without a pool).
    public var pooledSandboxesReady: Int { pool?.readyCount ?? 0 }

    /// The pids of the launchers parked in the pool.
    public var parkedLauncherPIDs: [Int32] { pool?.launcherPIDs ?? [] }

    /// The cgroups of the sandboxes ready in the pool (they belong to no container yet).
    public var pooledCgroups: [CgroupSet] { pool?.readyCgroups ?? [] }

    /// Whether the pool is full and idle (always true without one): what a caller comparing
    /// the host's state before and after some starts waits for.
    public var poolIsSettled: Bool { pool?.isSettled ?? true }

    func deregister(_ name: String) {
        _ = state.withLock { $0.live.removeValue(forKey: name) }
    }

    /// Closes every live container, then removes this instance's cgroups, state and lock, and the
    /// cgroup root if no other runner uses it. Only the first call does anything.
    public func shutdown() async {
        let (containers, already) = state.withLock { s -> ([Container], Bool) in
            defer { s.shutDown = true }
            return (Array(s.live.values), s.shutDown)
        }
        guard !already else { return }  // a second shutdown must not close descriptors again
        pool?.drain()
        for c in containers {
            do { try await c.close() } catch { logger.error("closing container failed", metadata: ["container": "\(c.name)", "error": "\(error)"]) }
        }
        do {
            try driver.removeInstance(instanceID)
        } catch {
            logger.error("removing instance cgroups failed", metadata: ["error": "\(error)"])
        }
        functionNetwork?.close()
        driver.removeRootIfEmpty()
        try? FileSystem.removeTree(paths.instance(instanceID))
        close(lockFD)
    }
}
