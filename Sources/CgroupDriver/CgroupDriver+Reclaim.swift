import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reclaiming a frozen container's memory (cgroup v2 `memory.reclaim`, Linux 5.19+): the kernel
/// pushes the cgroup's pages out (page cache dropped, anonymous memory to swap or zswap where
/// there is some), so a container that sits frozen for long costs the node less, at the price
/// of page faults when it thaws. Freeze experiments measure that trade.
extension CgroupDriver {
    /// What one reclaim did: the cgroup's memory.current before and after.
    public struct Reclaim: Sendable, Equatable {
        public var beforeBytes: UInt64
        public var afterBytes: UInt64

        public init(beforeBytes: UInt64, afterBytes: UInt64) {
            self.beforeBytes = beforeBytes
            self.afterBytes = afterBytes
        }
    }

    /// Whether this layout can reclaim a cgroup's memory on demand (pure v2 only: on hybrid and
    /// v1 hosts memory is a v1 controller, which has no such file).
    public var canReclaimMemory: Bool { layout.kind == .unified }

    /// Asks the kernel to reclaim all of the cgroup's memory it can. A partial reclaim (EAGAIN,
    /// what the kernel answers when it could not free the whole amount) is not an error.
    public func reclaimMemory(_ cg: CgroupSet) throws(RunnerError) -> Reclaim {
        guard canReclaimMemory, let v2 = cg.v2Path else {
            throw RunnerError(.unsupported, "memory.reclaim needs the cgroup v2 memory controller (this host: \(layout.kind))", step: "reclaim memory")
        }
        let before = CgroupFileFormat.number(try FileSystem.read(v2 + "/memory.current")) ?? 0
        if before > 0 {
            let fd = open(v2 + "/memory.reclaim", O_WRONLY | O_CLOEXEC)
            if fd < 0 { throw .system("open", errno: errno, "cannot open \(v2)/memory.reclaim") }
            defer { close(fd) }
            let text = Array(String(before).utf8)
            let n = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno != EAGAIN { throw .system("write", errno: errno, "\(v2)/memory.reclaim refused \(before)") }
        }
        let after = CgroupFileFormat.number(try FileSystem.read(v2 + "/memory.current")) ?? 0
        return Reclaim(beforeBytes: before, afterBytes: after)
    }
}
