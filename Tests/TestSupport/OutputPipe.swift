import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A pipe whose write end becomes a container's stdout or stderr, read by the test.
public final class OutputPipe: @unchecked Sendable {
    public let readFD: Int32
    public private(set) var writeFD: Int32
    private var buffer: [UInt8] = []

    public init() throws {
        var fds: [Int32] = [0, 0]
        if pipe(&fds) != 0 { throw RunnerError.system("pipe", errno: errno, "pipe for test output") }
        readFD = fds[0]
        writeFD = fds[1]
        _ = fcntl(readFD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeFD, F_SETFD, FD_CLOEXEC)
        _ = fcntl(readFD, F_SETFL, fcntl(readFD, F_GETFL) | O_NONBLOCK)
    }

    /// Closes our copy of the write end once the container has it, so EOF means it exited.
    public func closeWriteEnd() {
        if writeFD >= 0 { close(writeFD) }
        writeFD = -1
    }

    /// Everything readable now (non-blocking).
    @discardableResult
    public func drain() -> String {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            buffer.append(contentsOf: chunk[0..<n])
        }
        return text
    }

    /// Reads until EOF (the container and all its processes closed the pipe) or `timeoutMillis`,
    /// waiting on `ReadinessLoop` between reads: a test's container can run for seconds, and a
    /// thread of the cooperative pool must not sleep-poll meanwhile.
    public func readToEnd(timeoutMillis: Int = 10_000) async -> String {
        let deadline = MonotonicClock.nowNanos() + UInt64(timeoutMillis) * 1_000_000
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                continue
            }
            if errno == EINTR { continue }
            guard errno == EAGAIN, MonotonicClock.nowNanos() < deadline,
                (try? await ReadinessLoop.shared.wait(for: .readable, on: readFD, deadlineNanos: deadline)) == .ready
            else { break }
        }
        return text
    }

    public var text: String { String(decoding: buffer, as: UTF8.self) }

    deinit {
        close(readFD)
        if writeFD >= 0 { close(writeFD) }
    }
}
