import CRunnerShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A flag another thread can raise that `poll` sees (an eventfd): how a thread blocked on a
/// socket learns that it should stop, without closing the socket under it.
public final class EventSignal: Sendable {
    /// Readable (POLLIN) while raised.
    public let fd: Int32
    /// Whether the eventfd may hold a count: `clear` skips its read syscall when not (the
    /// usual case, once per hot call).
    private let raised = Atomic<Bool>(false)

    public init() throws(RunnerError) {
        fd = rn_eventfd()
        if fd < 0 { throw .system("eventfd", errno: -fd, "cannot make an eventfd") }
    }

    deinit { close(fd) }

    /// Safe from any thread.
    public func raise() {
        raised.store(true, ordering: .sequentiallyConsistent)
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    public func clear() {
        guard raised.exchange(false, ordering: .sequentiallyConsistent) else { return }
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }
}
