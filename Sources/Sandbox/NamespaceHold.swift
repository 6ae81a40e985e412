import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A descriptor of a bridge container's network namespace, held from its preparation until the
/// container is closed: the namespace (and so its veth and counters) outlives the container's
/// last process until the runner takes it off the bridge, so a cold call's network bytes can
/// still be read after the function exited.
final class NamespaceHold: Sendable {
    private let fd: Mutex<Int32>

    init(pid: Int32) throws(RunnerError) {
        let path = "/proc/\(pid)/ns/net"
        let opened = open(path, O_RDONLY | O_CLOEXEC)
        if opened < 0 { throw .system("open", errno: errno, "cannot hold the network namespace \(path)") }
        fd = Mutex(opened)
    }

    /// The descriptor, while held (-1 after `release`).
    var descriptor: Int32 { fd.withLock { $0 } }

    /// Lets the namespace go (idempotent).
    func release() {
        fd.withLock { fd in
            if fd >= 0 { _ = close(fd) }
            fd = -1
        }
    }

    deinit { release() }
}
