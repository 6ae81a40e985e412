import Runner
import Logging
import CRunnerShim
import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A container's output pipe: what the function writes goes to the log of the call it is
/// serving, and between calls to the runner's debug log (Fn's ghost writer); all of it also
/// to the app's syslog, when it has one. Read by the shared output pump, so thousands of idle
/// containers cost no threads.
final class ContainerOutput: Sendable {
    /// The end the container writes to; closed in the runner once the container has it.
    let writeFD: Int32
    private let token: UInt64
    private let shared = Shared()
    private let syslog: SyslogWriter?

    private final class Shared: Sendable {
        let state = Mutex(State())
        let ended = AsyncEvent()
    }

    /// Function output copied into the node's own log (FN_LOG_FUNCTION_OUTPUT), one line per
    /// line the function wrote, with the container's keys and the call's id.
    struct NodeLog: Sendable {
        let logger: Logger
        let metadata: Logger.Metadata
        /// stderr, or stdout+stderr where the two share a pipe (http-stream).
        let stream: String
        /// A line longer than this is logged in pieces.
        static let maximumLineBytes = 16 << 10
    }

    private struct State {
        var log: CallLog?
        /// The unfinished last line, for the node's log.
        var partialLine: [UInt8] = []
        var collected: [UInt8] = []
        var collectLimit = 0
        var overflowed = false
        var writeOpen = true
    }
    private let state = Mutex(State())

    /// `collectLimit` > 0 keeps what is written (a cold call's stdout) up to that many bytes,
    /// instead of sending it to a log; `Int.max` for no limit. The output owns `syslog`, and
    /// closes it with itself (also when it cannot be made).
    init(name: String, logger: Logger, collectLimit: Int = 0, syslog: SyslogWriter? = nil, nodeLog: NodeLog? = nil) throws(RunnerError) {
        self.syslog = syslog
        var fds: [Int32] = [-1, -1]
        if let e = Pipes.make(&fds) {
            syslog?.close()
            throw .system("pipe2", errno: e, "cannot create an output pipe for \(name)")
        }
        writeFD = fds[1]
        let shared = self.shared
        shared.state.withLock { $0.collectLimit = collectLimit }
        do {
            token = try OutputPump.shared.watch(fd: fds[0]) { chunk in
                guard let chunk else {
                    if let nodeLog { Self.copy(nil, to: nodeLog, shared) }
                    syslog?.close()
                    shared.ended.fire()
                    return
                }
                syslog?.write(chunk)
                if let nodeLog, collectLimit == 0 { Self.copy(chunk, to: nodeLog, shared) }
                let log = shared.state.withLock { s -> CallLog? in
                    if s.collectLimit > 0 {
                        let room = s.collectLimit - s.collected.count
                        if chunk.count > room { s.overflowed = true }
                        s.collected.append(contentsOf: chunk.prefix(max(0, room)))
                        return nil
                    }
                    return s.log
                }
                if let log {
                    log.write(chunk)
                } else if shared.state.withLock({ $0.collectLimit == 0 }) {
                    logger.debug("container output", metadata: ["container": "\(name)", "output": "\(String(decoding: chunk, as: UTF8.self))"])
                }
            }
        } catch {
            Glibc.close(fds[0])
            Glibc.close(fds[1])
            syslog?.close()
            throw error
        }
    }

    /// Logs the complete lines of `chunk` (with what came before it), or at the end (nil) the rest.
    private static func copy(_ chunk: [UInt8]?, to node: NodeLog, _ shared: Shared) {
        let (lines, callID) = shared.state.withLock { s -> ([[UInt8]], String?) in
            var lines: [[UInt8]] = []
            if let chunk {
                s.partialLine.append(contentsOf: chunk)
                while let newline = s.partialLine.firstIndex(of: UInt8(ascii: "\n")) {
                    lines.append(Array(s.partialLine[..<newline]))
                    s.partialLine.removeSubrange(...newline)
                }
                while s.partialLine.count > NodeLog.maximumLineBytes {
                    lines.append(Array(s.partialLine.prefix(NodeLog.maximumLineBytes)))
                    s.partialLine.removeFirst(NodeLog.maximumLineBytes)
                }
            } else if !s.partialLine.isEmpty {
                lines.append(s.partialLine)
                s.partialLine = []
            }
            return (lines, s.log?.callID)
        }
        for line in lines {
            var metadata = node.metadata
            metadata["stream"] = "\(node.stream)"
            if let callID { metadata["call_id"] = "\(callID)" }
            metadata["output"] = "\(String(decoding: line, as: UTF8.self))"
            node.logger.info("function output", metadata: metadata)
        }
    }

    /// The container has its copy of the write end: drop the runner's, so the pipe ends when
    /// the container does.
    func containerStarted() {
        let fd = shared.state.withLock { s -> Int32? in
            defer { s.writeOpen = false }
            return s.writeOpen ? writeFD : nil
        }
        if let fd { Glibc.close(fd) }
    }

    /// Output goes to `log` until `detach`.
    func attach(_ log: CallLog) { shared.state.withLock { $0.log = log } }
    func detach() {
        OutputPump.shared.drainNow(token)  // what was written during the call belongs to it
        shared.state.withLock { $0.log = nil }
    }

    /// What was collected, and whether more was written than the limit; waits (up to
    /// `timeout`) for the pipe to end, so nothing written before the container exited is lost.
    func collected(waitingUpTo timeout: Duration) async -> (bytes: [UInt8], overflowed: Bool) {
        await shared.ended.wait(upTo: timeout)
        return shared.state.withLock { ($0.collected, $0.overflowed) }
    }

    /// Waits (up to `timeout`) until the pipe has ended.
    func waitForEnd(upTo timeout: Duration) async { await shared.ended.wait(upTo: timeout) }

    func close() {
        containerStarted()
        OutputPump.shared.stop(token)
        syslog?.close()
    }
}

/// Close-on-exec pipes (a container only ever gets the ends it is given, as its stdio).
enum Pipes {
    /// Fills `fds` with a new pipe; the errno on failure.
    static func make(_ fds: inout [Int32]) -> Int32? {
        let rc = fds.withUnsafeMutableBufferPointer { rn_pipe_cloexec($0.baseAddress) }
        return rc < 0 ? -rc : nil
    }
}
