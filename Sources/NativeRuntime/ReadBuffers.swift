import Runner
import RunnerOS
import Synchronization

/// The 64 KiB buffers function answers are read into, shared by every connection: a read takes
/// one and gives it back. A connection of its own would cost each hot container 64 KiB even
/// while it sits frozen (64 MiB for a thousand), and a fresh one per read showed on the hot
/// path. At most as many exist as reads ever ran at once; 64 are kept.
enum ReadBuffers {
    static let size = 65536

    private final class Buffer: @unchecked Sendable {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: ReadBuffers.size, alignment: 16)
        deinit { bytes.deallocate() }
    }

    private static let free = Mutex<[Buffer]>([])

    /// Runs `body` with a buffer of `size` bytes, which it must not keep.
    static func with<T, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> T) throws(E) -> T {
        let buffer = free.withLock { $0.popLast() } ?? Buffer()
        defer { free.withLock { if $0.count < 64 { $0.append(buffer) } } }
        return try body(buffer.bytes)
    }
}
