import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A shared claim on an image store by a process that is pulling into it or running containers
/// from it. Garbage collection in any process removes data only when no other process holds
/// one, so `fnrunner rmi` can never delete the layers under a running `fnrunner run` or the
/// blobs of a pull in flight; the data waits for the next collection instead.
public final class StoreLease: @unchecked Sendable {
    private var fd: Int32

    init(path: String, exclusive: Bool, wait: Bool) throws(RunnerError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw .system("open", errno: errno, "cannot open \(path)") }
        let op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)
        while flock(fd, op) != 0 {
            let e = errno
            if e == EINTR { continue }
            close(fd)
            fd = -1
            throw .system("flock", errno: e, e == EWOULDBLOCK ? "the image store is in use" : "cannot lock \(path)")
        }
    }

    public func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit { release() }
}
