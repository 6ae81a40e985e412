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

/// Ready-made sandboxes, refilled in the background: cgroups made in every hierarchy and a
/// launcher parked in them with a network namespace of its own (on the bridge when the pool
/// serves bridge starts).
///
/// Why: the slow parts of a start do not depend on the function: the cgroups, and a network
/// namespace, which costs ~1 ms with a p99 of several. The pool pays both off the call path; a
/// start only writes the limits and has the launcher clone the container. When the pool is
/// empty, starts take the direct path.
final class SandboxPool: Sendable {
    typealias Entry = PreparedSandbox

    /// How many sandboxes it keeps ready at most.
    let capacity: Int
    private let driver: CgroupDriver
    private let instanceID: String
    private let logger: Logger
    /// Set when the pool serves bridge starts: each namespace is put on it ahead.
    let network: BridgeNetwork?
    /// What the hosts files of the bridge namespaces name (the node's hostname).
    let hostname: String

    private struct State {
        var ready: [Entry] = []
        var draining = false
        var made: UInt64 = 0
        /// Launchers made and not yet reaped: the ready ones and those ending after a launch.
        var launchersAlive = 0
    }
    private let state = Mutex(State())
    private let wake = Semaphore()
    private let refillEnded = Semaphore()

    init(capacity: Int, driver: CgroupDriver, instanceID: String, network: BridgeNetwork?, hostname: String, logger: Logger) {
        self.capacity = min(capacity, SandboxConfiguration.maximumPoolSize)
        self.hostname = hostname
        self.network = network
        self.driver = driver
        self.instanceID = instanceID
        self.logger = logger
        DedicatedThread.start("sandbox pool refill", name: "fn-pool-refill") { [self] in refillLoop() }
    }

    /// Takes a ready sandbox, or nil when none is ready. The caller calls `refill()` once its
    /// start is over: on a small node a refill beside the start it just served slows that start
    /// (measured here: a bridge namespace's refill added ~0.35 ms to a pooled start).
    func claim() -> Entry? {
        state.withLock { s -> Entry? in
            s.draining || s.ready.isEmpty ? nil : s.ready.removeFirst()
        }
    }

    /// Makes up for claimed sandboxes in the background.
    func refill() { wake.post() }

    /// Sandboxes ready now.
    var readyCount: Int { state.withLock { $0.ready.count } }

    /// The parked launchers' pids (for tests and `ps`-like views).
    var launcherPIDs: [Int32] { state.withLock { $0.ready.map(\.launcher.pid) } }

    /// The ready sandboxes' cgroups.
    var readyCgroups: [CgroupSet] { state.withLock { $0.ready.map(\.cgroup) } }

    /// Full, and every launcher that was used is reaped: nothing of the pool is in motion.
    var isSettled: Bool { state.withLock { $0.draining || ($0.ready.count == capacity && $0.launchersAlive == capacity) } }

    /// Ends an entry that will not be used: its launcher exits, its veth and cgroups go.
    func discard(_ entry: Entry) { entry.discard(driver: driver, network: network) }

    /// Stops refilling and ends every ready sandbox. Blocks until the refill thread has stopped,
    /// which is what the launchers' parent-death signal is tied to.
    func drain() {
        let wasDraining = state.withLock { s -> Bool in
            defer { s.draining = true }
            return s.draining
        }
        guard !wasDraining else { return }
        wake.post()
        refillEnded.waitForever()
        let left = state.withLock { s -> [Entry] in
            defer { s.ready = [] }
            return s.ready
        }
        for entry in left { discard(entry) }
    }

    private func refillLoop() {
        defer { refillEnded.post() }
        var failures = 0
        while true {
            let (draining, missing, number) = state.withLock { s in (s.draining, capacity - s.ready.count, s.made + 1) }
            if draining { return }
            if missing <= 0 {
                wake.waitForever()
                continue
            }
            do {
                let entry = try makeEntry(name: "p\(number)")
                failures = 0
                let kept = state.withLock { s -> Bool in
                    s.made = number
                    guard !s.draining else { return false }
                    s.ready.append(entry)
                    return true
                }
                if !kept { discard(entry) }
            } catch {
                state.withLock { $0.made = number }
                failures += 1
                if failures == 1 || failures % 60 == 0 {
                    logger.warning("cannot refill the sandbox pool; starts take the direct path", metadata: ["error": "\(error)"])
                }
                _ = wake.wait(seconds: 1)
            }
        }
    }

    private func makeEntry(name: String) throws(RunnerError) -> Entry {
        try PreparedSandbox.make(
            name: name, driver: driver, instanceID: instanceID, network: network, hostname: hostname,
            onLauncherMade: { state.withLock { $0.launchersAlive += 1 } },
            onLauncherFreed: { [weak self] in self?.state.withLock { $0.launchersAlive -= 1 } })
    }
}
