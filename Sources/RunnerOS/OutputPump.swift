import CRunnerShim
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads the output pipes of every container on one dedicated thread and hands each chunk to
/// its owner: thousands of hot containers can be alive, and a thread or a blocked task per
/// pipe would not scale. The pump owns each pipe it watches and closes it at end of file or
/// when told to stop.
public final class OutputPump: Sendable {
    public static let shared = OutputPump()

    /// Called on the pump thread with each chunk read, then once with nil at end of file.
    public typealias Sink = @Sendable ([UInt8]?) -> Void

    private struct Entry {
        var fd: Int32
        var sink: Sink
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextToken: UInt64 = 1
        var epollFD: Int32 = -1
        var threadStarted = false
    }
    private let state = Mutex(State())

    private init() {}

    /// Watches the read end `fd` (made non-blocking here); returns a token for `stop`.
    public func watch(fd: Int32, sink: @escaping Sink) throws(RunnerError) -> UInt64 {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let result: Result<UInt64, RunnerError> = state.withLock { s in
            if s.epollFD < 0 {
                let e = rn_epoll_create()
                if e < 0 { return .failure(.system("epoll_create1", errno: -e, "cannot create the output pump's epoll set")) }
                s.epollFD = e
            }
            let token = s.nextToken
            s.nextToken += 1
            let rc = rn_epoll_add(s.epollFD, fd, token)
            if rc < 0 { return .failure(.system("epoll_ctl", errno: -rc, "cannot watch output pipe \(fd)")) }
            s.entries[token] = Entry(fd: fd, sink: sink)
            if !s.threadStarted {
                s.threadStarted = true
                startThread()
            }
            return .success(token)
        }
        return try result.get()
    }

    /// Stops watching and closes the pipe; its sink is not called again (not even with nil).
    public func stop(_ token: UInt64) {
        state.withLock { s in
            guard let e = s.entries.removeValue(forKey: token) else { return }
            _ = rn_epoll_del(s.epollFD, e.fd)
            close(e.fd)
        }
    }

    /// Reads what is in the pipe now, on the calling thread, and hands it to the sink: what a
    /// function wrote before it answered must reach the log of that call, even if the pump
    /// thread has not come round to it yet.
    ///
    /// Called after every call: its buffer is a temporary one, not 64 KiB allocated and zeroed
    /// each time. Sixteen reads of 16 KiB take more than a pipe holds (64 KiB unless resized).
    public func drainNow(_ token: UInt64) {
        withUnsafeTemporaryAllocation(byteCount: 16384, alignment: 1) { drain(token, $0) }
    }

    private func startThread() { DedicatedThread.start("the output pump", name: "fn-output-pump") { self.run() } }

    private func run() {
        let epfd = state.withLock { $0.epollFD }
        var tokens = [UInt64](repeating: 0, count: 64)
        // Kept for the thread's life, which is the process's: this loop never ends.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 1)
        while true {
            let n = tokens.withUnsafeMutableBufferPointer { rn_epoll_wait(epfd, $0.baseAddress, 64, -1) }
            if n < 0 { continue }
            for i in 0..<Int(n) { drain(tokens[i], buffer) }
        }
    }

    /// Reads what is there (under the lock, so `stop` never closes a descriptor mid-read), then
    /// delivers outside it.
    private func drain(_ token: UInt64, _ buffer: UnsafeMutableRawBufferPointer) {
        var chunks: [[UInt8]] = []
        var ended = false
        let sink = state.withLock { s -> Sink? in
            guard let e = s.entries[token] else { return nil }
            for _ in 0..<16 {  // bounded, so one chatty container cannot starve the others
                let r = read(e.fd, buffer.baseAddress, buffer.count)
                if r > 0 {
                    chunks.append(Array(UnsafeRawBufferPointer(rebasing: buffer[0..<r])))
                    continue
                }
                if r < 0 && (errno == EAGAIN || errno == EINTR) { break }
                ended = true  // end of file, or an error that makes the pipe useless
                _ = rn_epoll_del(s.epollFD, e.fd)
                close(e.fd)
                s.entries[token] = nil
                break
            }
            return e.sink
        }
        guard let sink else { return }
        for c in chunks { sink(c) }
        if ended { sink(nil) }
    }
}
