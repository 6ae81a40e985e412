import Runner
import CgroupDriver
import Logging
import NodeNetwork
import RunnerOS
import Sandbox

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A hot http-stream function in a sandbox: ready when its FDK's socket appears in the
/// container's private iofs directory, called over one kept-alive connection, frozen between
/// calls and thawed before the next. Its stdout and stderr go to the running call's log, and
/// to the debug log between calls.
///
/// One call at a time (the slot queue guarantees it); a failed or timed-out call leaves the
/// connection unusable, and the container must then be closed, as Fn ends such containers.
public final class HotContainer: HotContainerHandle {
    public var container: Container { control.container }
    let output: ContainerOutput
    let control: FrozenContainer
    /// nil while a call has it, and for good after a call failed.
    private let connection = HeldConnection(what: "connection")
    /// Told once the container has ended (a zygote instance's template tidies up after it).
    private let onClose: (@Sendable () async -> Void)?

    init(
        container: Container, output: ContainerOutput, throttling: Bool,
        onThaw: (@Sendable (Double) -> Void)? = nil, onReclaim: (@Sendable (_ freedBytes: UInt64) -> Void)? = nil,
        onClose: (@Sendable () async -> Void)? = nil
    ) {
        control = FrozenContainer(container, throttling: throttling, onThaw: onThaw, onReclaim: onReclaim)
        self.output = output
        self.onClose = onClose
    }

    /// Waits for the FDK's socket in `directory` (the container's /tmp/iofs, or a zygote
    /// instance's directory in it, reached only through the runner's descriptor): watched (inotify) from before the container started, so it
    /// cannot be missed. A socket, or a symlink to one in the same directory, is accepted
    /// (`ListenerSocket`); anything else, or the container ending first, fails the start (502).
    /// A socket that is bound but not listening yet means "not ready yet", as does no socket:
    /// only no connection within `timeout` is an init timeout (504). Answers on the connection
    /// may have heads of at most `maxHeaderBytes`.
    func waitUntilReady(
        directory: Int32, watch: DirectoryWatch, timeout: Duration, maxHeaderBytes: Int = HTTPStreamConnection.defaultMaxHeaderBytes
    ) async throws(RunnerError) {
        let deadline = MonotonicClock.nowNanos() &+ timeout.nanoseconds
        while true {
            let created = watch.nextCreation()
            var bound = false
            switch ListenerSocket.open(in: directory, name: "lsnr.sock") {
            case .success(let listener):
                defer { Glibc.close(listener) }
                do {
                    let ready = try HTTPStreamConnection(listener: listener)
                    ready.maxHeaderBytes = maxHeaderBytes
                    ready.readOnSharedLoop()
                    connection.give(ready)
                    return
                } catch where error.errno == ECONNREFUSED {
                    bound = true
                }
            case .failure(.refused(let error)): throw error
            case .failure(.absent): break
            }
            if let exit = container.exit {
                throw RunnerError(.containerInit, "the function exited before it listened (\(exit))", step: "wait for function")
            }
            let now = MonotonicClock.nowNanos()
            if now > deadline {
                throw RunnerError(.containerInitTimeout, "no \(FunctionDefinition.listenerPath) within \(timeout)", step: "wait for function")
            }
            // A cancelled start's waits return at once: it stops instead of spinning to the deadline.
            if Task.isCancelled { throw CallErrors.startCancelled("wait for function") }
            // Woken by a creation in iofs; a bound socket starts listening without one, so it is
            // looked at again soon. The cap bounds how late an early exit is noticed.
            let cap: UInt64 = bound ? 500_000 : 5_000_000
            await created.wait(upTo: .nanoseconds(Int64(min(deadline - now, cap))))
        }
    }

    public func call(_ request: FunctionRequest, timeout: Duration, maxBodyBytes: Int, log: CallLog, stream: ResponseStream?)
        async throws(RunnerError) -> FunctionResponse
    {
        try await control.thawIfFrozen()
        let connection = try self.connection.take()
        output.attach(log)
        defer { output.detach() }
        let deadline = MonotonicClock.nowNanos() &+ timeout.nanoseconds
        let response = try await connection.call(request, deadlineNanos: deadline, maxBodyBytes: maxBodyBytes, stream: stream)
        self.connection.give(connection)  // only a clean exchange makes it reusable
        return response
    }

    public func freeze() throws(RunnerError) { try control.freeze() }

    public func thaw() async throws(RunnerError) { try await control.thawIfFrozen() }

    public var isFrozen: Bool { control.isFrozen }

    public var isLocalToCaller: Bool { !control.isFrozen && connection.isReadOnCurrentLoop }

    /// Fn's listener check (a socket, or a symlink to one in the same directory) on a directory
    /// the caller trusts.
    public static func checkListener(directory: String, name: String) throws(RunnerError) {
        try ListenerSocket.check(directory: directory, name: name)
    }

    public func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool { await control.diedOfOOM(waitingUpTo: timeout) }

    public func stats() -> ContainerCounters? { control.stats() }

    public func callCounters() -> ContainerCounters? { control.stats(memoryNow: false) }

    public func onExit(_ action: @escaping @Sendable () -> Void) { container.onExit { _ in action() } }

    /// Ends the container (its iofs tmpfs goes with the container's mounts).
    public func close() async {
        connection.drop()
        await control.close()
        output.close()
        await onClose?()
    }
}

extension Container {
    /// Whether the kernel killed something in the container for its memory limit. Waits up to
    /// `timeout` for the process to end, since a connection can fail before the kill is visible.
    func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool {
        if ((try? memoryEvents())?.oomKills ?? 0) > 0 { return true }
        let exit = await raceWithTimeout(timeout, { await self.waitUnlessCancelled() })
        return exit?.outOfMemory == true || ((try? memoryEvents())?.oomKills ?? 0) > 0
    }

    /// The cgroup counters a call's stats are made from; nil if they cannot be read.
    var counters: ContainerCounters? {
        guard var c = (try? stats()).map(ContainerCounters.init) else { return nil }
        c.addNetwork(networkCounters())
        return c
    }
}

extension ContainerCounters {
    mutating func addNetwork(_ n: NetworkCounters?) {
        networkReceivedBytes = n?.receivedBytes
        networkSentBytes = n?.sentBytes
    }

    init(_ s: CgroupStats) {
        self.init(
            cpuUsageNanos: s.cpuUsageNanos, cpuThrottledPeriods: s.cpuThrottledPeriods, cpuThrottledNanos: s.cpuThrottledNanos,
            memoryCurrentBytes: s.memoryCurrentBytes, memoryPeakBytes: s.memoryPeakBytes)
    }
}

/// Environment lists (NAME=VALUE) merged so that later entries replace earlier ones by name.
enum RunnerEnv {
    static func merge(_ base: [String], _ overrides: [String]) -> [String] {
        func name(_ e: String) -> Substring { e.split(separator: "=", maxSplits: 1).first ?? Substring(e) }
        let names = Set(overrides.map(name))
        return base.filter { !names.contains(name($0)) } + overrides
    }
}
