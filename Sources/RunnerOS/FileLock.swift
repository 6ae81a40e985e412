#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An flock on a file, held until `release()` or deinit (or the process's death, which is what
/// makes it right for "only one process owns this": a killed owner frees it).
public final class FileLock: @unchecked Sendable {
    private var fd: Int32
    public let path: String

    /// Takes the lock: exclusive or shared, now or (`wait`) once others let go. Without
    /// waiting, a lock another process holds throws with errno EWOULDBLOCK and `busyMessage`.
    public init(path: String, exclusive: Bool = true, wait: Bool = false, busyMessage: String? = nil) throws(RunnerError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw .system("open", errno: errno, "cannot open lock file \(path)") }
        let op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)
        while flock(fd, op) != 0 {
            let e = errno
            if e == EINTR { continue }
            close(fd)
            fd = -1
            throw .system(
                "flock", errno: e, e == EWOULDBLOCK ? busyMessage ?? "\(path) is locked by another process" : "cannot lock \(path)")
        }
    }

    /// Unlocks before it closes. Closing alone frees the lock only when no other descriptor
    /// refers to the same open file, and a child forked meanwhile by any thread of this process
    /// holds a copy until its exec or its exit: a container's child until it closes what it
    /// does not keep, a slow start on a loaded node for many milliseconds. The lock would
    /// outlive its release for that long.
    public func release() {
        if fd >= 0 {
            _ = flock(fd, LOCK_UN)
            close(fd)
        }
        fd = -1
    }

    deinit { release() }
}
