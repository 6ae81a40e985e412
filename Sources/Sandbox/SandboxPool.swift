import CgroupDriver
import Logging
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Ready-made sandboxes, refilled in the background: cgroups made in every hierarchy and a
/// launcher parked in them with a network namespace of its own.
///
/// Why: the slow parts of a start do not depend on the function. A `cgroup.procs` write waits
/// for an RCU grace period after the kernel was idle, and a network namespace costs ~1 ms with a
/// p99 of several. The pool pays both off the call path; a start only writes the limits and has
/// the launcher clone the container. When the pool is empty, starts take the direct path.
final class SandboxPool: Sendable {
    struct Entry: Sendable {
        let cgroup: CgroupSet
        let launcher: ParkedLauncher
    }

    /// How many sandboxes it keeps ready at most.
    let capacity: Int
    private let driver: CgroupDriver
    private let instanceID: String
    private let logger: Logger

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

    init(capacity: Int, driver: CgroupDriver, instanceID: String, logger: Logger) {
        self.capacity = min(capacity, SandboxConfiguration.maximumPoolSize)
        self.driver = driver
        self.instanceID = instanceID
        self.logger = logger
        DedicatedThread.start("sandbox pool refill") { [self] in refillLoop() }
    }

    /// Takes a ready sandbox, or nil when none is ready; the pool refills behind it.
    func claim() -> Entry? {
        let entry = state.withLock { s -> Entry? in
            s.draining || s.ready.isEmpty ? nil : s.ready.removeFirst()
        }
        if entry != nil { wake.post() }
        return entry
    }

    /// Sandboxes ready now.
    var readyCount: Int { state.withLock { $0.ready.count } }

    /// The parked launchers' pids (for tests and `ps`-like views).
    var launcherPIDs: [Int32] { state.withLock { $0.ready.map(\.launcher.pid) } }

    /// The ready sandboxes' cgroups.
    var readyCgroups: [CgroupSet] { state.withLock { $0.ready.map(\.cgroup) } }

    /// Full, and every launcher that was used is reaped: nothing of the pool is in motion.
    var isSettled: Bool { state.withLock { $0.draining || ($0.ready.count == capacity && $0.launchersAlive == capacity) } }

    /// Ends an entry that will not be used: its launcher exits, its cgroups go.
    func discard(_ entry: Entry) {
        entry.launcher.dismiss()
        do { try driver.delete(entry.cgroup) } catch {
            logger.warning("removing a pooled cgroup failed", metadata: ["cgroup": "\(entry.cgroup)", "error": "\(error)"])
        }
    }

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
        let cgroup = try driver.create(instance: instanceID, container: name, limits: ResourceLimits())
        let launcher: ParkedLauncher
        do {
            launcher = try ParkedLauncher(network: true) { [weak self] in self?.state.withLock { $0.launchersAlive -= 1 } }
            state.withLock { $0.launchersAlive += 1 }
        } catch {
            try? driver.delete(cgroup)
            throw error
        }
        do {
            // The write that may wait for a grace period: here, and never again for this sandbox.
            try driver.attach(pid: launcher.pid, to: cgroup, includeV2: true)
        } catch {
            discard(Entry(cgroup: cgroup, launcher: launcher))
            throw error
        }
        return Entry(cgroup: cgroup, launcher: launcher)
    }
}
