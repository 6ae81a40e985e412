@testable import Runner
import RunnerOS
import Synchronization

/// A container driver without containers, on a manual clock: what each call does is written in
/// its body (`sleep:MS`, `status:N`, `crash`, `oom`, `big:N`, `log:TEXT`, and with a response
/// stream `stream:N`, `stream-crash:N`, `stream-endless`; else an echo), and
/// what starting does is up to the test. It records everything the agent asked of it.
final class FakeDriver: ContainerDriver {
    let clock: ManualClock
    /// Runs before each start (numbered from 1); throwing fails that start.
    let onStart: @Sendable (ContainerTask, Int) async throws(RunnerError) -> Void
    let failFreeze: Bool
    /// The first container's thaw fails as a freezer that never reports thawed would.
    let failFirstThaw: Bool
    /// When set, every freeze waits for a post of it (a slow freezer), blocking its thread.
    let holdFreeze: Semaphore?

    private struct State {
        var starts = 0
        var containers: [FakeContainer] = []
        var coldRuns: [ContainerTask] = []
    }
    private let state = Mutex(State())

    init(
        clock: ManualClock, failFreeze: Bool = false, failFirstThaw: Bool = false, holdFreeze: Semaphore? = nil,
        onStart: @escaping @Sendable (ContainerTask, Int) async throws(RunnerError) -> Void = { _, _ throws(RunnerError) in }
    ) {
        self.clock = clock
        self.failFreeze = failFreeze
        self.failFirstThaw = failFirstThaw
        self.holdFreeze = holdFreeze
        self.onStart = onStart
    }

    var starts: Int { state.withLock { $0.starts } }
    var containers: [FakeContainer] { state.withLock { $0.containers } }
    var live: [FakeContainer] { containers.filter { !$0.isClosed } }
    var coldRuns: [ContainerTask] { state.withLock { $0.coldRuns } }

    func startHot(_ task: ContainerTask) async throws(RunnerError) -> any HotContainerHandle {
        let n = state.withLock { s -> Int in
            s.starts += 1
            return s.starts
        }
        try await onStart(task, n)
        let c = FakeContainer(task: task, clock: clock, failFreeze: failFreeze, failThaw: failFirstThaw && n == 1, holdFreeze: holdFreeze)
        state.withLock { $0.containers.append(c) }
        return c
    }

    func runCold(_ task: ContainerTask, request: FunctionRequest, log: CallLog) async throws(RunnerError) -> ColdResult {
        state.withLock { $0.coldRuns.append(task) }
        log.write("cold stderr\n")
        let body = String(decoding: request.body, as: UTF8.self)
        if body.hasPrefix("exit:") { return ColdResult(exitCode: Int32(body.dropFirst(5)) ?? 1) }
        if body == "oom" { return ColdResult(exitCode: 137, outOfMemory: true) }
        if body == "env" {
            let env = task.function.environment + task.extraEnvironment
            return ColdResult(exitCode: 0, stdout: Array(env.joined(separator: "\n").utf8))
        }
        if body.hasPrefix("sleep:"), let ms = Int(body.dropFirst(6)) {
            let wanted = Duration.milliseconds(ms)
            try? await clock.sleep(untilNanos: clock.nanos(after: min(wanted, task.timeout)))
            if wanted > task.timeout { throw RunnerError(.timeout, "ran past its timeout", step: "run container") }
        }
        return ColdResult(exitCode: 0, stdout: Array("cold:\(body)".utf8), counters: ContainerCounters(cpuUsageNanos: 7))
    }
}

/// One fake hot container.
final class FakeContainer: HotContainerHandle {
    let task: ContainerTask
    let clock: ManualClock
    let failFreeze: Bool
    let failThaw: Bool
    let holdFreeze: Semaphore?
    private let closedEvent = AsyncEvent()
    /// Its "process" ended (`kill`, or a call "answer-then-exit").
    private let exitedEvent = AsyncEvent()

    private struct State {
        var frozen = false
        var busy = false
        var calls = 0
        var freezes = 0
        var freezing = false
        var thaws = 0
        var overlaps = 0
        var oom = false
        var broken = false
        var local = false
    }
    private let state = Mutex(State())

    init(task: ContainerTask, clock: ManualClock, failFreeze: Bool, failThaw: Bool = false, holdFreeze: Semaphore? = nil) {
        self.task = task
        self.clock = clock
        self.failFreeze = failFreeze
        self.failThaw = failThaw
        self.holdFreeze = holdFreeze
    }

    var name: String { task.name }
    var isClosed: Bool { closedEvent.hasFired }
    var isFrozen: Bool { state.withLock { $0.frozen } }
    /// What a test said of it: calls from any thread count as its own loop's.
    var isLocalToCaller: Bool { state.withLock { $0.local } }
    func markLocalToCaller() { state.withLock { $0.local = true } }
    var calls: Int { state.withLock { $0.calls } }
    var freezes: Int { state.withLock { $0.freezes } }
    /// A freeze has begun and not ended (only with `holdFreeze`).
    var isFreezing: Bool { state.withLock { $0.freezing } }
    var thaws: Int { state.withLock { $0.thaws } }
    /// Calls that began while another was running here (must stay 0).
    var overlaps: Int { state.withLock { $0.overlaps } }

    func call(_ request: FunctionRequest, timeout: Duration, maxBodyBytes: Int, log: CallLog, stream: ResponseStream?)
        async throws(RunnerError) -> FunctionResponse
    {
        try state.withLock { s throws(RunnerError) in
            if closedEvent.hasFired || s.broken { throw RunnerError(.invalidState, "closed or broken", step: "call function") }
            if s.busy { s.overlaps += 1 }
            s.busy = true
            s.calls += 1
            if s.frozen {
                s.frozen = false
                s.thaws += 1
            }
        }
        defer { state.withLock { $0.busy = false } }
        let body = String(decoding: request.body, as: UTF8.self)
        func fail(_ message: String) -> RunnerError {
            state.withLock { $0.broken = true }
            return RunnerError(.unavailable, message, step: "read response")
        }
        if body.hasPrefix("sleep:"), let ms = Int(body.dropFirst(6)) {
            let wanted = Duration.milliseconds(ms)
            let closed = await raceWithTimeout(min(wanted, timeout), clock: clock, { await self.closedEvent.wait() })
            if closed != nil { throw fail("the container was closed mid-call") }
            if wanted > timeout {
                state.withLock { $0.broken = true }
                throw RunnerError(.timeout, "the function did not answer in time", step: "call function")
            }
            return FunctionResponse(status: 200, headers: [], body: Array("\(name):slept \(ms)".utf8))
        }
        if body.hasPrefix("status:"), let n = Int(body.dropFirst(7)) {
            return FunctionResponse(status: n, headers: [], body: Array("status \(n)".utf8))
        }
        if let stream, body.hasPrefix("stream") {
            // A head with "head" as its first bytes, then chunks c0, c1, …: N of them, then the
            // end ("stream:N") or a broken connection ("stream-crash:N"); or until the client
            // leaves ("stream-endless").
            let parts = body.split(separator: ":")
            let chunks = parts.count > 1 ? Int(parts[1]) ?? 0 : Int.max
            let headers = [HTTPHeader(name: "x-container", value: name)]
            try await stream.begin(FunctionResponse(status: 200, headers: headers, body: Array("head".utf8)))
            let deadline = MonotonicClock.nowNanos() + 60_000_000_000
            var i = 0
            while i < chunks {
                try await stream.write(Array("c\(i)".utf8)[...], deadlineNanos: deadline)
                i += 1
            }
            if parts[0] == "stream-crash" { throw fail("the function closed the connection") }
            var streamed = FunctionResponse(status: 200, headers: headers, body: [])
            streamed.streamed = true
            return streamed
        }
        if body == "crash" { throw fail("the function closed the connection") }
        if body == "answer-then-exit" {
            kill()  // the process ends while its answer is on its way: the call succeeds
            return FunctionResponse(status: 200, headers: [], body: Array("\(name):bye".utf8))
        }
        if body == "oom" {
            state.withLock { $0.oom = true }
            throw fail("the function closed the connection")
        }
        if body.hasPrefix("big:"), let n = Int(body.dropFirst(4)) {
            if maxBodyBytes > 0 && n > maxBodyBytes {
                state.withLock { $0.broken = true }
                throw CallErrors.responseTooBig()
            }
            return FunctionResponse(status: 200, headers: [], body: [UInt8](repeating: 0x61, count: n))
        }
        if body.hasPrefix("log:") { log.write(String(body.dropFirst(4))) }
        return FunctionResponse(
            status: 200, headers: [HTTPHeader(name: "x-container", value: name), HTTPHeader(name: "connection", value: "keep-alive")],
            body: Array("\(name):\(body)".utf8))
    }

    /// Its process ends on its own (killed, crashed): every later call fails.
    func kill() {
        state.withLock { $0.broken = true }
        exitedEvent.fire()
    }

    func onExit(_ action: @escaping @Sendable () -> Void) { exitedEvent.onFire(action) }

    /// With both `holdFreeze` and `failFreeze`, the freeze holds and then fails.
    func freeze() throws(RunnerError) {
        if let holdFreeze {
            state.withLock { $0.freezing = true }
            holdFreeze.waitForever()
        }
        if failFreeze {
            state.withLock { $0.freezing = false }
            throw RunnerError(.system, "freezer.state: EIO", step: "freeze")
        }
        state.withLock {
            $0.frozen = true
            $0.freezing = false
            $0.freezes += 1
        }
    }

    func thaw() async throws(RunnerError) {
        try state.withLock { s throws(RunnerError) in
            guard s.frozen else { return }
            if failThaw { throw RunnerError(.timeout, "cgroup did not thaw within 2000 ms", step: "thaw") }
            s.frozen = false
            s.thaws += 1
        }
    }

    func diedOfOOM(waitingUpTo timeout: Duration) async -> Bool { state.withLock { $0.oom } }

    func stats() -> ContainerCounters? {
        state.withLock { ContainerCounters(cpuUsageNanos: UInt64($0.calls) * 1000, memoryCurrentBytes: 4096, memoryPeakBytes: 8192) }
    }

    func close() async {
        closedEvent.fire()
        exitedEvent.fire()  // as a real container's process ends when it is closed
    }
}
