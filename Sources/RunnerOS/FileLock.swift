#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An exclusive flock on a file, held until `release()` or deinit (or the process's death,
/// which is what makes it right for "only one process owns this": a killed owner frees it).
public final class FileLock: @unchecked Sendable {
    private var fd: Int32
    public let path: String

    /// Takes the lock now or throws (`wouldBlock` when another process holds it).
    public init(path: String) throws(RunnerError) {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw .system("open", errno: errno, "cannot open lock file \(path)") }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            close(fd)
            fd = -1
            throw .system("flock", errno: e, e == EWOULDBLOCK ? "\(path) is locked by another process" : "cannot lock \(path)")
        }
    }

    public func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit { release() }
}
