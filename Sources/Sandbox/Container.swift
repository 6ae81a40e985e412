import CRunnerShim
import CgroupDriver
import Freezer
import NodeNetwork
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A running container: its init process (PID 1 of its own pid namespace) and its cgroup.
///
/// It stays the sandbox's until `close()`, which kills whatever is left, waits for the process,
/// and removes the cgroup; mounts need no cleanup because they exist only in the container's
/// mount namespace, which dies with it.
public final class Container: Sendable {
    public let name: String
    /// Host pid of the container's init.
    public let pid: Int32
    public let cgroup: CgroupSet
    let pidfd: Int32
    let driver: CgroupDriver
    let freezer: Freezer?
    private weak let sandbox: Sandbox?
    /// Its place on the function bridge (nil off the bridge).
    public let network: NetworkAttachment?
    private let bridge: BridgeNetwork?
    private let namespace: NamespaceHold?
    /// A process the runner did not clone (a zygote's fork, `Sandbox.adopt`): not a pid
    /// namespace's init, so its exit ends nothing else in its cgroup.
    private let adopted: Bool
    /// How its start went: `pool claim` (or `cgroup create`, `sandbox prepare` off the pool),
    /// `clone`, and `exec` (the child's setup until the program runs).
    public let startPhases: [TimedPhase]

    private struct State {
        var closed = false
    }
    /// The init process's exit, once reaped.
    private let exited = AsyncValue<ContainerExit>()
    private let state = Mutex(State())

    init(
        name: String, pid: Int32, pidfd: Int32, cgroup: CgroupSet, driver: CgroupDriver, freezer: Freezer?, sandbox: Sandbox,
        network: NetworkAttachment? = nil, namespace: NamespaceHold? = nil, adopted: Bool = false, startPhases: [TimedPhase] = []
    ) {
        self.adopted = adopted
        self.startPhases = startPhases
        self.network = network
        self.namespace = namespace
        self.bridge = network == nil ? nil : sandbox.functionNetwork
        self.name = name
        self.pid = pid
        self.pidfd = pidfd
        self.cgroup = cgroup
        self.driver = driver
        self.freezer = freezer
        self.sandbox = sandbox
    }

    /// Called by the reaper thread once the init process has been reaped.
    func processExited(_ process: ProcessExit) {
        let oom = ((try? driver.memoryEvents(cgroup))?.oomKills ?? 0) > 0
        let exit = ContainerExit(process: process, outOfMemory: oom)
        exited.set(exit)
    }

    /// Used when the container could not be handed out after its process started.
    func abandon() {
        _ = rn_pidfd_signal(pidfd, SIGKILL)
        var code: Int32 = 0
        var kind: Int32 = 0
        _ = rn_pidfd_wait(pidfd, 0, &code, &kind)
        Glibc.close(pidfd)
    }

    /// The exit, if the process has ended.
    public var exit: ContainerExit? { exited.value }

    /// Waits until the container's init process has exited.
    public func wait() async -> ContainerExit { await exited.waitIgnoringCancellation() }

    /// Runs `action` once the container's init process has exited (at once if it has), on the
    /// thread that saw the exit: for an owner that must hear of an end nobody asked for.
    public func onExit(_ action: @escaping @Sendable (ContainerExit) -> Void) { exited.onSet(action) }

    /// Waits until the container's init process has exited, or returns nil once the task is
    /// cancelled (for waits raced against a deadline).
    public func waitUnlessCancelled() async -> ContainerExit? { await exited.wait() }

    /// Freezes every process of the container; returns how long the kernel took.
    @discardableResult
    public func freeze(timeoutMillis: Int = 2000) throws(RunnerError) -> Freezer.Transition {
        try requireFreezer().freeze(timeoutMillis: timeoutMillis)
    }

    @discardableResult
    public func thaw(timeoutMillis: Int = 2000) throws(RunnerError) -> Freezer.Transition {
        try requireFreezer().thaw(timeoutMillis: timeoutMillis)
    }

    /// See `Freezer.thawWithoutSleeping`: nil when the thaw is not confirmed yet.
    public func thawWithoutSleeping() throws(RunnerError) -> Freezer.Transition? { try requireFreezer().thawWithoutSleeping() }

    public func freezerState() throws(RunnerError) -> Freezer.State { try requireFreezer().state() }

    private func requireFreezer() throws(RunnerError) -> Freezer {
        guard let freezer else {
            throw RunnerError(.unsupported, "this host has no cgroup freezer for \(cgroup)", step: "freezer")
        }
        return freezer
    }

    public func stats() throws(RunnerError) -> CgroupStats { try driver.stats(cgroup) }

    /// Bytes through its bridge link so far (nil off the bridge, and once closed).
    public func networkCounters() -> NetworkCounters? {
        guard let network, !state.withLock({ $0.closed }) else { return nil }
        return bridge?.counters(network)
    }

    /// Whether this host can reclaim a container's memory on demand (cgroup v2).
    public var canReclaimMemory: Bool { driver.canReclaimMemory }

    /// Asks the kernel to reclaim the (frozen) container's memory; see CgroupDriver.reclaimMemory.
    public func reclaimMemory() throws(RunnerError) -> CgroupDriver.Reclaim { try driver.reclaimMemory(cgroup) }

    /// A cheap, repeatable reader of the counters calls are measured by (see CgroupStatsReader).
    public func statsReader(throttling: Bool) -> CgroupStatsReader { driver.statsReader(cgroup, throttling: throttling) }

    /// OOM counters of the container's cgroup (a kill for the memory limit shows here at once).
    public func memoryEvents() throws(RunnerError) -> MemoryEvents { try driver.memoryEvents(cgroup) }

    /// Sends a signal to the container's init through its pidfd (never to a recycled pid).
    public func signal(_ signal: Int32) throws(RunnerError) {
        let rc = rn_pidfd_signal(pidfd, signal)
        if rc < 0 && rc != -ESRCH { throw .system("pidfd_send_signal", errno: -rc, "cannot signal container \(name)") }
    }

    /// Kills every process in the container (frozen or not) and waits until the cgroup is empty.
    public func kill() throws(RunnerError) { try driver.kill(cgroup) }

    /// Kills what is left, waits for the init process, removes the cgroup. Idempotent.
    public func close() async throws(RunnerError) {
        let first = state.withLock { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        guard first else { return }
        do throws(RunnerError) {
            // An init's exit ended its pid namespace; an adopted process may have left children.
            if exit == nil || adopted { try driver.kill(cgroup) }
        } catch {
            state.withLock { $0.closed = false }  // nothing was released: close() may be tried again
            throw error
        }
        _ = await wait()
        Glibc.close(pidfd)
        sandbox?.deregister(name)
        if let network { bridge?.detach(network) }
        namespace?.release()
        try driver.delete(cgroup)
    }
}
