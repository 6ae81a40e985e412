import CRunnerShim
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A small tmpfs that is on no host path: made with fsmount(2), held by the runner as a
/// descriptor and attached inside one container (`ContainerSpec.attachedMounts`). A function
/// can put symlinks, FIFOs or files there, but nothing it writes can send the runner anywhere
/// else: the runner reaches the contents only relative to this descriptor, a hard link cannot
/// cross into another filesystem, and the size and inode caps bound what a function can store.
/// Nothing is left on the host when the runner dies: the mount goes with its last holder.
public final class PrivateTmpfs: Sendable {
    /// The mount's root; valid until `close()`.
    public let fd: Int32
    private let closed = Mutex(false)

    /// - Parameters: `sizeBytes` and `inodes` bound the filesystem; its root belongs to
    ///   `uid`:`gid` with `mode`. Mounted nosuid, nodev, noexec.
    public init(sizeBytes: UInt64, inodes: UInt64, uid: UInt32, gid: UInt32, mode: UInt32 = 0o755) throws(RunnerError) {
        let fd = rn_detached_tmpfs(sizeBytes, inodes, uid, gid, mode)
        if fd < 0 { throw .system("fsmount", errno: -fd, "cannot make a private tmpfs") }
        self.fd = fd
    }

    /// A path the kernel resolves to the mount's root (for inotify, which takes paths only).
    public var procPath: String { "/proc/self/fd/\(fd)" }

    /// Releases the runner's hold; the mount ends when the container's mount namespace does.
    /// Idempotent.
    public func close() {
        let first = closed.withLock { c -> Bool in
            defer { c = true }
            return !c
        }
        if first { _ = Glibc.close(fd) }
    }

    deinit { close() }
}
