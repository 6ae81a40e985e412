import Runner
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Watches containers' iofs directories for the FDK's socket, with one inotify instance for
/// the whole runner: a watch is set up before a container starts, so the socket is seen the
/// moment it appears, without polling. One instance, because closing an inotify instance waits
/// for an SRCU grace period (15–20 ms on this kind of host), which would land on every cold start.
final class DirectoryWatcher: Sendable {
    private let fd: Int32
    private let waiters = Mutex<[Int32: AsyncEvent]>([:])

    init() throws(RunnerError) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0 { throw .system("inotify_init1", errno: errno, "cannot create the socket watcher") }
        self.fd = fd
        _ = try OutputPump.shared.watch(fd: fd) { [weak self] chunk in
            guard let chunk, let self else { return }
            for wd in Self.descriptors(in: chunk) {
                // Fire the current event and arm a fresh one for the next creation.
                let fired = self.waiters.withLock { w -> AsyncEvent? in
                    guard let current = w[wd] else { return nil }
                    w[wd] = AsyncEvent()
                    return current
                }
                fired?.fire()
            }
        }
    }

    /// The watch descriptors of the events in `bytes` (whole events, as inotify reads them).
    static func descriptors(in bytes: [UInt8]) -> [Int32] {
        var out: [Int32] = []
        var offset = 0
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= bytes.count {
            let event = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: inotify_event.self) }
            out.append(event.wd)
            offset += header + Int(event.len)
        }
        return out
    }

    /// Starts watching `directory` for new entries; the event fires at the first one.
    func watch(_ directory: String) throws(RunnerError) -> DirectoryWatch {
        let wd = inotify_add_watch(fd, directory, UInt32(IN_CREATE | IN_MOVED_TO | IN_ONLYDIR))
        if wd < 0 { throw .system("inotify_add_watch", errno: errno, "cannot watch \(directory)") }
        waiters.withLock { $0[wd] = AsyncEvent() }
        return DirectoryWatch(watcher: self, wd: wd)
    }

    fileprivate func currentEvent(_ wd: Int32) -> AsyncEvent { waiters.withLock { $0[wd] } ?? AsyncEvent() }

    fileprivate func remove(_ wd: Int32) {
        waiters.withLock { _ = $0.removeValue(forKey: wd) }
        _ = inotify_rm_watch(fd, wd)  // marks are freed asynchronously: no grace-period wait here
    }
}

/// One directory being watched; removed when dropped.
final class DirectoryWatch: Sendable {
    private let watcher: DirectoryWatcher
    private let wd: Int32

    fileprivate init(watcher: DirectoryWatcher, wd: Int32) {
        self.watcher = watcher
        self.wd = wd
    }

    deinit { watcher.remove(wd) }

    /// The next creation in the directory. Take it before looking at the directory, then wait
    /// on it: a creation in between is not missed.
    func nextCreation() -> AsyncEvent { watcher.currentEvent(wd) }
}

extension AsyncEvent {
    /// Waits until fired or `timeout` passes.
    func wait(upTo timeout: Duration) async {
        if hasFired { return }
        _ = await raceWithTimeout(timeout, { await self.wait() })
    }
}
