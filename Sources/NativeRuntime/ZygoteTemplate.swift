import CRunnerShim
import CgroupDriver
import Logging
import Runner
import RunnerOS
import Sandbox
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One function's zygote template: a container of the function's image, config and limits
/// that runs `ZygoteForkServer`, frozen except while it forks. Its forks are the function's
/// instances: each moved into cgroups of its own (`Sandbox.adopt`) before it may go on, each
/// with its own directory under the template's /tmp/iofs.
///
/// Instances live in the template's namespaces, so ending the template (its pid namespace)
/// ends them too: a template that is replaced (its fn changed) is retired and closed only
/// once its last instance has ended.
final class ZygoteTemplate: Sendable {
    let function: FunctionDefinition
    let container: Container
    private let output: ContainerOutput
    /// The runner's end of the control socket (the template's stdin).
    private let control: Int32
    /// The template's /tmp/iofs: the instances' listener directories are made in it.
    private let iofs: PrivateTmpfs
    private let uid: UInt32
    private let gid: UInt32
    let limits: ResourceLimits
    let sandbox: Sandbox

    private struct State {
        var instances = 0
        var retired = false
        var closed = false
        var nextDirectory = 0
        var parked: ZygoteInstance?
        var parking = false
        /// The latest fork ahead of need (with its discard, if it came too late), awaited by `close`.
        var parkingTask: Task<Void, Never>?
        /// Set while a fork runs (one at a time, waited for asynchronously); fired when it ends.
        var forkEnded: AsyncEvent?
        /// Forks in a row that failed to start (one that starts resets it).
        var failedStarts = 0
    }
    private let state = Mutex(State())

    /// Room for many instances' sockets and links: 3 inodes each, no data.
    static let iofsInodes: UInt64 = 1024

    private init(
        function: FunctionDefinition, container: Container, output: ContainerOutput, control: Int32, iofs: PrivateTmpfs,
        uid: UInt32, gid: UInt32, limits: ResourceLimits, sandbox: Sandbox
    ) {
        self.function = function
        self.container = container
        self.output = output
        self.control = control
        self.iofs = iofs
        self.uid = uid
        self.gid = gid
        self.limits = limits
        self.sandbox = sandbox
    }

    /// Starts the template and returns once the fork server has imported the FDK and the
    /// function and is frozen, waiting for its first fork. Bounded by the task's start timeout.
    static func start(_ task: ContainerTask, driver: NativeDriver) async throws(RunnerError) -> ZygoteTemplate {
        var (spec, _) = try await driver.spec(for: task)
        spec.argv = try ZygoteForkServer.argv(for: spec.argv, layers: spec.layers)
        let iofs = try PrivateTmpfs(sizeBytes: NativeDriver.iofsSizeBytes, inodes: iofsInodes, uid: spec.uid, gid: spec.gid)
        var pair: [Int32] = [-1, -1]
        if socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) != 0 {
            let err = errno
            iofs.close()
            throw .system("socketpair", errno: err, "cannot make the zygote's control socket")
        }
        let output: ContainerOutput
        do {
            output = try await driver.sharedOutput(for: task)
        } catch {
            iofs.close()
            Glibc.close(pair[0])
            Glibc.close(pair[1])
            throw error
        }
        spec.stdin = pair[1]
        spec.stdout = output.writeFD
        spec.stderr = output.writeFD
        spec.attachedMounts = [.init(fd: iofs.fd, target: "/tmp/iofs")]
        let container: Container
        do {
            container = try await driver.sandbox.startOnWorkerThread(spec, name: nil)
        } catch {
            iofs.close()
            output.close()
            Glibc.close(pair[0])
            Glibc.close(pair[1])
            throw error
        }
        Glibc.close(pair[1])
        output.containerStarted()
        let template = ZygoteTemplate(
            function: task.function, container: container, output: output, control: pair[0], iofs: iofs, uid: spec.uid,
            gid: spec.gid, limits: spec.limits, sandbox: driver.sandbox)
        do {
            let timeout = Int(min(task.startTimeout.nanoseconds / 1_000_000, UInt64(Int32.max)))
            try await BlockingThread.run { () throws(RunnerError) in
                let reply = try template.receive(timeoutMillis: timeout)
                if let fd = reply.fd { rn_close_untrusted(fd) }
                guard reply.text == "ready" else {
                    throw RunnerError(.containerInit, "the zygote template said \"\(reply.text.prefix(80))\", not ready", step: "zygote template")
                }
                try template.container.freeze()
            }
        } catch {
            await template.close()
            if let exit = container.exit {
                throw RunnerError(.containerInit, "the zygote template ended before it was ready (\(exit))", step: "zygote template")
            }
            throw error
        }
        // However the template ends (a crash, a kill, the sandbox shutting down), what the
        // runner holds for it goes with it.
        Task { [template] in
            _ = await template.container.wait()
            await template.close()
        }
        return template
    }

    var isAlive: Bool { container.exit == nil && !state.withLock { $0.closed } }

    /// A new instance, stopped before the FDK runs and already in its own cgroups. One fork
    /// runs at a time; a second waits for it (not on a thread), all within the task's start
    /// timeout.
    func fork(_ task: ContainerTask, driver: NativeDriver) async throws(RunnerError) -> ZygoteInstance {
        let deadline = MonotonicClock.nowNanos() &+ task.startTimeout.nanoseconds
        let directory = try await beginFork(deadline: deadline)
        defer { endFork() }
        let output: ContainerOutput
        do {
            output = try await driver.sharedOutput(for: task)
        } catch {
            removeDirectory(directory)
            throw error
        }
        do {
            let container = try await BlockingThread.run { () throws(RunnerError) -> Container in
                try self.forkBlocking(directory: directory, output: output.writeFD, deadline: deadline)
            }
            output.containerStarted()
            state.withLock { $0.instances += 1 }
            return ZygoteInstance(container: container, output: output, directory: directory)
        } catch {
            output.close()
            removeDirectory(directory)
            throw error
        }
    }

    /// Waits until no other fork runs, claims the next one, and names its directory.
    private func beginFork(deadline: UInt64) async throws(RunnerError) -> String {
        while true {
            let running = try state.withLock { s throws(RunnerError) -> AsyncEvent? in
                if s.closed || s.retired { throw RunnerError(.unavailable, "the zygote template is retired", step: "zygote fork") }
                if let running = s.forkEnded { return running }
                s.forkEnded = AsyncEvent()
                return nil
            }
            guard let running else { break }
            let now = MonotonicClock.nowNanos()
            guard now < deadline else {
                throw RunnerError(.containerInitTimeout, "another fork of the zygote template took the whole start timeout", step: "zygote fork")
            }
            // A cancelled start's waits return at once: it stops instead of spinning to the deadline.
            if Task.isCancelled { throw CallErrors.startCancelled("zygote fork") }
            _ = await raceWithTimeout(.nanoseconds(Int64(deadline - now)), { await running.wait() })
        }
        return state.withLock { s in
            defer { s.nextDirectory += 1 }
            return "i\(s.nextDirectory)"
        }
    }

    private func endFork() {
        let ended = state.withLock { s in
            defer { s.forkEnded = nil }
            return s.forkEnded
        }
        ended?.fire()
    }

    /// `body` with the template's /tmp/iofs descriptor, unless the template is closed (then
    /// nil): under the lock `close` takes, so the number is never used after it is closed.
    private func withIofs<T>(_ body: (Int32) -> T) -> T? {
        state.withLock { s in s.closed ? nil : body(iofs.fd) }
    }

    private func forkBlocking(directory: String, output: Int32, deadline: UInt64) throws(RunnerError) -> Container {
        let made = withIofs { fd -> Int32 in
            if mkdirat(fd, directory, 0o700) != 0 { return errno }
            return fchownat(fd, directory, uid, gid, AT_SYMLINK_NOFOLLOW) != 0 ? errno : 0
        }
        guard let made else { throw RunnerError(.unavailable, "the zygote template is closed", step: "zygote fork") }
        if made != 0 { throw .system("mkdirat", errno: made, "cannot make the instance's iofs directory for the function's user") }
        try container.thaw()
        // Frozen again only once the fork has left the template's cgroup (it would freeze too).
        defer { _ = try? container.freeze() }
        let request = Array("fork \(directory)".utf8)
        let sent = request.withUnsafeBytes { rn_send_with_fd(control, $0.baseAddress, $0.count, output) }
        if sent < 0 { throw .system("sendmsg", errno: Int32(-sent), "cannot ask the zygote template for a fork") }
        let now = MonotonicClock.nowNanos()
        let reply = try receive(timeoutMillis: now < deadline ? Int((deadline - now) / 1_000_000) : 0)
        guard reply.text == "forked \(directory)", let pidfd = reply.fd else {
            if let fd = reply.fd { rn_close_untrusted(fd) }
            throw RunnerError(.containerInit, "the zygote template did not fork: \(reply.text.prefix(80))", step: "zygote fork")
        }
        return try sandbox.adopt(pidfd: pidfd, limits: limits, from: container.cgroup, templatePID: container.pid)
    }

    /// One message from the template; its end (or silence past the timeout) is an error.
    private func receive(timeoutMillis: Int) throws(RunnerError) -> (text: String, fd: Int32?) {
        var buffer = [UInt8](repeating: 0, count: 512)
        var fd: Int32 = -1
        let wait = Int32(min(timeoutMillis, Int(Int32.max)))
        let n = buffer.withUnsafeMutableBytes { rn_recv_with_fd(control, $0.baseAddress, $0.count, &fd, wait) }
        if n == -Int(ETIMEDOUT) {
            throw RunnerError(.containerInitTimeout, "the zygote template did not answer within \(timeoutMillis) ms", step: "zygote control")
        }
        if n < 0 { throw .system("recvmsg", errno: Int32(-n), "cannot read the zygote template's answer") }
        if n == 0 { throw RunnerError(.containerInit, "the zygote template closed its control socket", step: "zygote control") }
        return (String(decoding: buffer[0..<n], as: UTF8.self), fd >= 0 ? fd : nil)
    }

    /// A descriptor of an instance's listener directory (never following a link the function
    /// may have put in its place), or nil.
    func openDirectory(_ name: String) -> Int32? {
        let fd = withIofs { openat($0, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } ?? -1
        return fd >= 0 ? fd : nil
    }

    /// Removes what the FDK leaves in an ended instance's directory (its socket and link), and
    /// the directory. Anything else the function made there stays, bounded by the tmpfs.
    private func removeDirectory(_ name: String) {
        guard let fd = openDirectory(name) else { return }
        for entry in (try? FileSystem.list(directoryFD: fd)) ?? [] { unlinkat(fd, entry, 0) }
        Glibc.close(fd)
        _ = withIofs { unlinkat($0, name, AT_REMOVEDIR) }
    }

    /// Whether the template should be given up on after an instance of it failed to start:
    /// three in a row while the template lives (a start that works resets the count).
    func instanceStartFailed() -> Bool {
        state.withLock { s in
            s.failedStarts += 1
            return s.failedStarts >= 3
        }
    }

    func instanceStarted() { state.withLock { $0.failedStarts = 0 } }

    /// An instance has ended: its directory goes, and a retired template with no instance left
    /// is closed (by the parking task itself without waiting for itself).
    func instanceEnded(_ instance: ZygoteInstance, inParkingTask: Bool = false) async {
        removeDirectory(instance.directory)
        let last = state.withLock { s -> Bool in
            s.instances -= 1
            return s.retired && s.instances == 0
        }
        if last { await close(awaitingParking: !inParkingTask) }
    }

    /// The parked instance, if one is ready (taken: the next caller gets none until another
    /// is parked).
    func takeParked() -> ZygoteInstance? {
        state.withLock { s in
            defer { s.parked = nil }
            return s.parked
        }
    }

    /// Forks one instance ahead of need, unless one is parked or being parked.
    func parkAhead(_ task: ContainerTask, driver: NativeDriver) {
        state.withLock { s in
            guard !s.closed, !s.retired, !s.parking, s.parked == nil else { return }
            s.parking = true
            // Made under the lock, so `close` always finds the latest one to await.
            s.parkingTask = Task {
                let instance = try? await fork(task, driver: driver)
                let unwanted = state.withLock { s -> ZygoteInstance? in
                    s.parking = false
                    if s.closed || s.retired { return instance }
                    s.parked = instance
                    return nil
                }
                if let unwanted { await unwanted.discard(template: self, inParkingTask: true) }
            }
        }
    }

    /// No new instance comes from here any more; closed once the last one has ended.
    func retire() async {
        let (parked, closeNow) = state.withLock { s -> (ZygoteInstance?, Bool) in
            s.retired = true
            defer { s.parked = nil }
            return (s.parked, s.instances == 0)
        }
        if let parked { await parked.discard(template: self) } else if closeNow { await close() }
    }

    /// Ends the template (and with its pid namespace, every instance left). Idempotent.
    func close(awaitingParking: Bool = true) async {
        let (first, parked) = state.withLock { s -> (Bool, ZygoteInstance?) in
            defer {
                s.closed = true
                s.parked = nil
            }
            return (!s.closed, s.parked)
        }
        guard first else { return }
        if let parked {
            try? await parked.container.close()
            parked.output.close()
        }
        // Ending the template first cuts a fork under way short (its read sees the end). The
        // parking task (with the discard of what it forked too late) and any fork still
        // running are awaited before the descriptors they use are closed.
        try? await container.close()
        if awaitingParking { await state.withLock({ $0.parkingTask })?.value }
        while let running = state.withLock({ $0.forkEnded }) { await running.waitIgnoringCancellation() }
        Glibc.close(control)
        iofs.close()
        output.close()
    }
}
