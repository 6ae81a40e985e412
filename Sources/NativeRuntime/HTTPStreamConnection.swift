import NIOCore
import NIOPosix
import Runner
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One kept-alive HTTP/1.1 connection to a hot function's unix socket (the http-stream format).
///
/// Non-blocking descriptors: the calling task writes itself, and reads what an event loop
/// read for it (`readOnSharedLoop`, the hot socket's way) or reads itself, waiting on the
/// process's `ReadinessLoop` when the function has nothing to say yet (pipes). A call in
/// flight holds no thread either way. Every wait has the call's deadline and ends when the
/// task is cancelled. Any error leaves the connection unusable and the caller ends the
/// container, as Fn does for transport errors. Used by one call at a time: HotContainer hands
/// it out exclusively.
public final class HTTPStreamConnection: @unchecked Sendable {
    private let fd: Int32
    /// Where requests are written: the socket, or a function's stdin for the stdio formats.
    private let writeFD: Int32
    /// What was read and not consumed yet; emptied (and its memory given back when it grew
    /// large) between calls, so an idle container holds next to nothing here.
    private var buffer: [UInt8] = []
    private var maxBodyBytes = 0
    /// Where this call's body goes as it arrives (http-stream calls whose client streams).
    private var stream: ResponseStream?
    /// Where the socket's answers arrive when an event loop reads it (`readOnSharedLoop`);
    /// nil while this connection reads for itself (pipes, and sockets not handed to a loop).
    private var inbox: FunctionInbox?
    /// The event loop's channel on a duplicate of `fd`: it reads, this connection writes.
    private var channel: (any Channel)?
    /// Handed to an event loop (`readOnSharedLoop`); its channel is made at the first call.
    private var readsOnLoop = false
    /// The loop that reads the socket, once the first call made the channel there.
    private var readerLoop: (any EventLoop)?
    private var streamHead: FunctionResponse?
    private var streamed = false
    /// The default limit on a function's response head (FN_MAX_HDR_RESPONSE_SIZE unset or 0).
    public static let defaultMaxHeaderBytes = ContainerTask.defaultMaxResponseHeaderBytes
    /// The most bytes a response head (or a chunked answer's trailers) may take: a function
    /// cannot make the runner buffer without bound before its body.
    public var maxHeaderBytes = HTTPStreamConnection.defaultMaxHeaderBytes

    /// Connects to a socket at a path the runner trusts (its own, or a test's).
    public convenience init(socketPath: String) throws(RunnerError) {
        try self.init(connectingTo: socketPath, shownAs: socketPath)
    }

    /// Connects to the socket behind an `O_PATH` descriptor (see `ListenerSocket`): the
    /// kernel follows /proc/self/fd/N to that very inode, so no name a function controls is
    /// resolved.
    convenience init(listener: Int32) throws(RunnerError) {
        try self.init(connectingTo: "/proc/self/fd/\(listener)", shownAs: FunctionDefinition.listenerPath)
    }

    private init(connectingTo socketPath: String, shownAs name: String) throws(RunnerError) {
        // Everything that can fail happens before the properties are set: a class whose init
        // throws after that runs its deinit, which would close the descriptors a second time.
        let sock = try ListenerSocket.connect(socketPath, shownAs: name)
        fd = sock
        writeFD = sock
        // Non-blocking: read and write first, wait only when the socket says EAGAIN.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// A connection over a pair of pipes (a hot function's stdout and stdin); owns both.
    init(readFD: Int32, writeFD: Int32) {
        fd = readFD
        self.writeFD = writeFD
        _ = fcntl(readFD, F_SETFL, fcntl(readFD, F_GETFL) | O_NONBLOCK)
        _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        channel?.close(promise: nil)
        close(fd)
        if writeFD != fd { close(writeFD) }
    }

    /// Hands the reading of the socket to an event loop of NIO's shared group, the group both
    /// edges serve calls on (see `FunctionInbox` for why): a duplicate of the descriptor
    /// becomes a NIO channel, which reads while this connection writes on its own descriptor.
    /// The channel is made at the first call, on the loop that call runs on: a container
    /// starts on no loop, and its first caller's loop is where its answers should wake.
    /// Before the first call, once.
    public func readOnSharedLoop() {
        precondition(!readsOnLoop && writeFD == fd, "a socket connection is handed to a loop once")
        readsOnLoop = true
    }

    /// Makes the reading channel on the calling task's event loop (any loop of the group for a
    /// task on none).
    private func registerReader() async throws(RunnerError) {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        if copy < 0 { throw .system("fcntl", errno: errno, "cannot duplicate the function's socket") }
        let inbox = FunctionInbox()
        do {
            // NIO closes `copy` with the channel.
            channel = try await ClientBootstrap(group: loop)
                // One read per readiness event: the inbox's limit then holds to within a read.
                .channelOption(.maxMessagesPerRead, value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FunctionInboxHandler(inbox)) }
                }
                .withConnectedSocket(copy).get()
        } catch {
            throw RunnerError(.system, "cannot read the function's socket on an event loop: \(error)", step: "register function socket")
        }
        self.inbox = inbox
        readerLoop = loop
    }

    /// Whether a call made from the current thread would have its answer read on this same
    /// thread: the socket's loop is the current one, or the socket goes to a loop at its first
    /// call and so would come here. False for connections that read for themselves (pipes).
    public var isReadOnCurrentLoop: Bool { readerLoop?.inEventLoop ?? readsOnLoop }

    /// What the function sent that no call has read yet, when a loop reads the socket.
    public var bufferedBytes: Int { inbox?.bufferedBytes ?? 0 }

    /// How much unread a loop-read connection holds before it stops reading the socket.
    public static var unreadLimit: Int { FunctionInbox.highWater }

    /// Sends one call and reads the whole response, or throws `.timeout` at `deadlineNanos`
    /// (MonotonicClock).
    /// `maxBodyBytes` (FN_MAX_RESPONSE_SIZE; 0 = unlimited) bounds the response body.
    /// With a `stream`, a 200 answer whose body is not all there yet is passed on as it arrives.
    /// Cancelling the task fails the call with `callCancelled` at its next wait.
    public func call(
        _ request: FunctionRequest, deadlineNanos: UInt64, maxBodyBytes: Int = 0, stream: ResponseStream? = nil
    ) async throws(RunnerError) -> FunctionResponse {
        let message = try HTTPFraming.request(request)
        self.maxBodyBytes = maxBodyBytes
        self.stream = stream
        defer { self.stream = nil }
        if readsOnLoop && inbox == nil { try await registerReader() }
        try await send(message, deadlineNanos)
        defer { trim() }
        return try await receive(deadlineNanos)
    }

    /// Gives back a large buffer's memory once a call consumed it all.
    private func trim() {
        if buffer.isEmpty && buffer.capacity > 16 << 10 { buffer = [] }
    }

    /// Writes `bytes` and reads one HTTP response (the stdio http format).
    func exchange(_ bytes: [UInt8], deadlineNanos: UInt64, maxBodyBytes: Int) async throws(RunnerError) -> FunctionResponse {
        self.maxBodyBytes = maxBodyBytes
        try await send(bytes, deadlineNanos)
        defer { trim() }
        return try await receive(deadlineNanos)
    }

    /// Writes `bytes` and reads one JSON object (the stdio json format); also says whether more
    /// bytes than the object had arrived (Fn's excess data, which ends the container).
    func exchangeJSON(_ bytes: [UInt8], deadlineNanos: UInt64, maxBytes: Int) async throws(RunnerError) -> (object: [UInt8], excess: Bool) {
        try await send(bytes, deadlineNanos)
        let scanner = JSONObjectScanner()
        while true {
            if let end = try scanner.end(in: buffer) {
                let object = Array(buffer[0..<end])
                buffer.removeFirst(end)
                while let first = buffer.first, first == 0x20 || first == 0x0a || first == 0x0d || first == 0x09 { buffer.removeFirst() }
                return (object, !buffer.isEmpty)
            }
            if maxBytes > 0 && buffer.count > maxBytes + 4096 { throw CallErrors.responseTooBig() }
            try await fill(deadlineNanos)
        }
    }

    private func send(_ bytes: [UInt8], _ deadline: UInt64) async throws(RunnerError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(writeFD, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    try await waitFor(.writable, deadline)
                    continue
                }
                throw .system("write", errno: errno, "the function's connection failed while sending")
            }
            offset += n
        }
    }

    private func fill(_ deadline: UInt64) async throws(RunnerError) {
        if !(try await fillUnlessClosed(deadline)) {
            throw RunnerError(.unavailable, "the function closed the connection", step: "read response")
        }
    }

    /// Reads more into the buffer; false when the function closed the connection.
    private func fillUnlessClosed(_ deadline: UInt64) async throws(RunnerError) -> Bool {
        if let inbox {
            return try await inbox.take(into: &buffer, deadlineNanos: deadline, timedOut: { Self.timedOut }, cancelled: { CallErrors.cancelled("call function") })
        }
        while true {
            let n = readOnce()
            if n > 0 { return true }
            if n == 0 { return false }
            if n == -Int(EINTR) { continue }
            if n != -Int(EAGAIN) { throw .system("read", errno: Int32(-n), "the function's connection failed") }
            try await waitFor(.readable, deadline)
        }
    }

    /// One read into the buffer: the byte count, 0 at end of file, or -errno.
    private func readOnce() -> Int {
        ReadBuffers.with { chunk in
            let n = read(fd, chunk.baseAddress, chunk.count)
            if n < 0 { return -Int(errno) }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
            return n
        }
    }

    private func waitFor(_ interest: ReadinessLoop.Interest, _ deadline: UInt64) async throws(RunnerError) {
        if Task.isCancelled { throw CallErrors.cancelled("call function") }
        if MonotonicClock.nowNanos() >= deadline { throw Self.timedOut }
        switch try await ReadinessLoop.shared.wait(for: interest, on: interest == .writable ? writeFD : fd, deadlineNanos: deadline) {
        case .ready: return
        case .timedOut: throw Self.timedOut
        case .cancelled: throw CallErrors.cancelled("call function")
        }
    }

    private static var timedOut: RunnerError { RunnerError(.timeout, "the function did not answer in time", step: "call function") }

    /// Passes `body` on to the stream (the head first) when this call streams; false otherwise.
    private func pass(_ body: inout [UInt8], _ deadline: UInt64) async throws(RunnerError) -> Bool {
        guard let stream, let head = streamHead else { return false }
        if !streamed {
            var first = head
            first.body = body
            try await stream.begin(first)
            streamed = true
        } else {
            try await stream.write(body[...], deadlineNanos: deadline)
        }
        body.removeAll(keepingCapacity: true)
        return true
    }

    /// Reads more; a streaming call first passes on what it has, since reading may wait.
    private func fill(passing body: inout [UInt8], _ deadline: UInt64) async throws(RunnerError) {
        _ = try await pass(&body, deadline)
        try await fill(deadline)
    }

    private func receive(_ deadline: UInt64) async throws(RunnerError) -> FunctionResponse {
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = buffer.firstOffset(of: [13, 10, 13, 10])
            if headerEnd == nil {
                // A first line that is not a status line is garbage now, not at the deadline.
                if let lineEnd = buffer.firstIndex(of: 10), !buffer[0..<lineEnd].starts(with: Array("HTTP/".utf8)) {
                    throw RunnerError(
                        .invalidArgument, "the function sent an invalid status line: \(String(decoding: buffer[0..<min(lineEnd, 80)], as: UTF8.self))",
                        step: "read response")
                }
                if buffer.count > maxHeaderBytes { throw CallErrors.headerTooBig() }
                try await fill(deadline)
            }
        }
        // A head that arrived whole in one read is held to the same limit.
        if headerEnd! + 4 > maxHeaderBytes { throw CallErrors.headerTooBig() }
        let (status, headers) = try HTTPFraming.responseHead(buffer[0..<headerEnd!])
        buffer.removeFirst(headerEnd! + 4)
        streamed = false
        streamHead = stream != nil && status == 200 ? FunctionResponse(status: status, headers: headers, body: []) : nil
        var body: [UInt8]
        var closeDelimited = false
        if headers.contains(where: { $0.name == "transfer-encoding" && $0.value.lowercased().contains("chunked") }) {
            body = try await readChunked(deadline)
        } else if let lengthText = try HTTPFraming.contentLength(headers) {
            guard let length = HTTPFraming.size(lengthText, radix: 10) else {
                throw RunnerError(.invalidArgument, "the function sent an invalid Content-Length: \(lengthText.prefix(40))", step: "read response")
            }
            if maxBodyBytes > 0 && length > maxBodyBytes { throw CallErrors.responseTooBig() }
            if buffer.count >= length {
                body = Array(buffer[0..<length])
                buffer.removeFirst(length)
            } else {
                // Not all there: stream it if the call streams, else gather it.
                body = buffer
                buffer.removeAll(keepingCapacity: true)
                var remaining = length - body.count
                while remaining > 0 {
                    try await fill(passing: &body, deadline)
                    let n = min(buffer.count, remaining)
                    body.append(contentsOf: buffer[0..<n])
                    buffer.removeFirst(n)
                    remaining -= n
                }
            }
        } else if status == 204 || status == 304 || (100..<200).contains(status) {
            body = []  // no body by definition
        } else {
            // Neither a length nor chunks: the body ends when the function closes the
            // connection (HTTP/1.1's last resort), so this container serves no other call.
            body = try await readUntilClosed(deadline)
            closeDelimited = true
        }
        var response = FunctionResponse(status: status, headers: headers, body: body)
        response.endsContainer = closeDelimited
        if streamed {
            _ = try await pass(&body, deadline)
            response.body = []
            response.streamed = true
        }
        return response
    }

    /// The body of an answer that ends when the function closes the connection.
    private func readUntilClosed(_ deadline: UInt64) async throws(RunnerError) -> [UInt8] {
        var body = buffer
        buffer.removeAll(keepingCapacity: true)
        var total = body.count
        while true {
            if (maxBodyBytes > 0 && total > maxBodyBytes) || total > HTTPFraming.maxSize { throw CallErrors.responseTooBig() }
            _ = try await pass(&body, deadline)
            if !(try await fillUnlessClosed(deadline)) { return body }
            total += buffer.count
            body.append(contentsOf: buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }

    private func readChunked(_ deadline: UInt64) async throws(RunnerError) -> [UInt8] {
        var body: [UInt8] = []
        var total = 0
        while true {
            var lineEnd = buffer.firstOffset(of: [13, 10])
            while lineEnd == nil {
                try await fill(passing: &body, deadline)
                lineEnd = buffer.firstOffset(of: [13, 10])
            }
            let line = String(decoding: buffer[0..<lineEnd!], as: UTF8.self)
            let sizeField = Substring(line).utf8.prefix { $0 != UInt8(ascii: ";") }  // extensions after ";" are dropped
            let sizeText = String(decoding: HTTPFraming.trimmedASCIIWhitespace(sizeField), as: UTF8.self)
            guard let size = HTTPFraming.size(sizeText, radix: 16) else {
                throw RunnerError(.invalidArgument, "the function sent an invalid chunk size: \(line.prefix(40))", step: "read response")
            }
            buffer.removeFirst(lineEnd! + 2)
            if size == 0 {
                // Trailer fields, if any (dropped, as Fn's proxy drops them), up to the empty line
                // that ends the message: nothing of this answer may be left for the next call.
                var trailerBytes = 0
                while true {
                    var end = buffer.firstOffset(of: [13, 10])
                    while end == nil {
                        if buffer.count > maxHeaderBytes { throw CallErrors.headerTooBig() }
                        try await fill(passing: &body, deadline)
                        end = buffer.firstOffset(of: [13, 10])
                    }
                    trailerBytes += end! + 2
                    if trailerBytes > maxHeaderBytes { throw CallErrors.headerTooBig() }
                    buffer.removeFirst(end! + 2)
                    if end! == 0 { return body }
                }
            }
            total += size  // both at most 2^40: no overflow
            if maxBodyBytes > 0 && total > maxBodyBytes { throw CallErrors.responseTooBig() }
            if total > HTTPFraming.maxSize { throw CallErrors.responseTooBig() }
            // A big chunk is passed on in pieces as they arrive.
            var left = size
            while left > 0 {
                if buffer.isEmpty { try await fill(passing: &body, deadline) }
                let n = min(left, buffer.count)
                body.append(contentsOf: buffer[0..<n])
                buffer.removeFirst(n)
                left -= n
            }
            while buffer.count < 2 { try await fill(passing: &body, deadline) }
            buffer.removeFirst(2)
        }
    }
}

