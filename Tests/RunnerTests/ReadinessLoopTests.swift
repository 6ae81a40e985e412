import Foundation
import Runner
import RunnerOS
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Function I/O waits on one epoll thread: what a wait ends with, and that waits hold no
/// thread of their own.
@Suite struct ReadinessLoopTests {
    /// A connected pair of non-blocking unix stream sockets, closed when dropped.
    final class SocketPair: Sendable {
        let ours: Int32
        let theirs: Int32
        init() throws {
            var fds: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0 else {
                throw RunnerError.system("socketpair", errno: errno, "test socket pair")
            }
            ours = fds[0]
            theirs = fds[1]
        }
        func send(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { write(theirs, $0.baseAddress, $0.count) } }
        deinit {
            close(ours)
            close(theirs)
        }
    }

    /// The deadline of waits meant to end some other way (ready, cancelled): far enough that a
    /// full run on a fresh clone under two CPU hogs, where one of these tests took over a
    /// minute, never reaches it first.
    var soon: UInt64 { MonotonicClock.nowNanos() + 120_000_000_000 }

    static func threadCount() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.dropFirst(8).trimmingCharacters(in: .whitespaces)) ?? -1
    }

    @Test func aWaitEndsWhenItsDescriptorBecomesReadable() async throws {
        let loop = ReadinessLoop()
        let pair = try SocketPair()
        let waiting = Task { try await loop.wait(for: .readable, on: pair.ours, deadlineNanos: soon) }
        try await waitUntil { loop.waiting == 1 }
        pair.send("x")
        #expect(try await waiting.value == .ready)
        #expect(loop.waiting == 0)
    }

    @Test func aWaitForWritingEndsAtOnceOnASocketWithRoom() async throws {
        let pair = try SocketPair()
        #expect(try await ReadinessLoop().wait(for: .writable, on: pair.ours, deadlineNanos: soon) == .ready)
    }

    @Test func aWaitWithNothingToReadEndsAtItsDeadline() async throws {
        let pair = try SocketPair()
        let outcome = try await ReadinessLoop().wait(for: .readable, on: pair.ours, deadlineNanos: MonotonicClock.nowNanos() + 50_000_000)
        #expect(outcome == .timedOut)
    }

    @Test func aWaitWithAnEarlierDeadlineThanTheLoopsSleepStillEndsOnTime() async throws {
        // The loop sleeps up to a second when a far deadline is its earliest; a nearer one must
        // wake it rather than wait for that second (a 20 s ceiling bounds a broken loop).
        let loop = ReadinessLoop()
        let far = try SocketPair()
        let near = try SocketPair()
        let farWait = Task { try await loop.wait(for: .readable, on: far.ours, deadlineNanos: soon) }
        try await waitUntil { loop.waiting == 1 }
        let outcome = try await loop.wait(for: .readable, on: near.ours, deadlineNanos: MonotonicClock.nowNanos() + 20_000_000)
        #expect(outcome == .timedOut)
        farWait.cancel()
        #expect(try await farWait.value == .cancelled)
    }

    @Test func aCancelledWaitEndsAsCancelledAndLeavesNothingEnrolled() async throws {
        let loop = ReadinessLoop()
        let pair = try SocketPair()
        let waiting = Task { try await loop.wait(for: .readable, on: pair.ours, deadlineNanos: soon) }
        try await waitUntil { loop.waiting == 1 }
        waiting.cancel()
        #expect(try await waiting.value == .cancelled)
        #expect(loop.waiting == 0)
        // The descriptor can be waited on again, and the stale arming does not wake the new wait.
        let again = Task { try await loop.wait(for: .readable, on: pair.ours, deadlineNanos: soon) }
        try await waitUntil { loop.waiting == 1 }
        pair.send("y")
        #expect(try await again.value == .ready)
    }

    @Test func aWaitOnADescriptorEpollRefusesIsAClearError() async throws {
        let path = "/tmp/fnrunner-test-readiness-\(getpid())"
        FileManager.default.createFile(atPath: path, contents: Data())
        defer { unlink(path) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let error = await #expect(throws: RunnerError.self) {
            _ = try await ReadinessLoop().wait(for: .readable, on: fd, deadlineNanos: self.soon)
        }
        #expect(error?.step == "epoll_ctl", "\(String(describing: error))")
    }

    @Test func threeHundredWaitsInFlightHoldNoThreadEach() async throws {
        let loop = ReadinessLoop()
        // 300, not thousands: the tests share one process, and a library in it (not ours) uses
        // select(), which aborts on a descriptor numbered 1024 or more.
        let pairs = try (0..<300).map { _ in try SocketPair() }
        // The loop's own thread is started by a first wait, before the count is taken.
        _ = try await loop.wait(for: .writable, on: pairs[0].ours, deadlineNanos: soon)
        let before = Self.threadCount()
        try await withThrowingTaskGroup(of: ReadinessLoop.Outcome.self) { group in
            for pair in pairs {
                group.addTask { try await loop.wait(for: .readable, on: pair.ours, deadlineNanos: self.soon) }
            }
            try await waitUntil { loop.waiting == 300 }
            let during = Self.threadCount()
            // Other suites run beside this one and start threads of their own meanwhile; a thread
            // per wait would be 300 more.
            #expect(during - before < 100, "threads before \(before), with 300 waits \(during)")
            for pair in pairs { pair.send("z") }
            var ready = 0
            for try await outcome in group where outcome == .ready { ready += 1 }
            #expect(ready == 300)
        }
    }

    @Test func aTimerFiresAtItsDeadlineOnceAndACancelledOneNever() async throws {
        let loop = ReadinessLoop()
        let fired = Mutex<[String]>([])
        let start = MonotonicClock.nowNanos()
        let firedAt = Mutex<UInt64>(0)
        // Deadlines a second away: under two CPU hogs this thread was once descheduled past
        // deadlines of 20 and 30 ms before it could schedule the past timer and cancel one.
        _ = loop.schedule(atNanos: start + 1_000_000_000) {
            fired.withLock { $0.append("due") }
            firedAt.withLock { $0 = MonotonicClock.nowNanos() }
        }
        let cancelled = loop.schedule(atNanos: start + 800_000_000) { fired.withLock { $0.append("cancelled") } }
        _ = loop.schedule(atNanos: start - 1) { fired.withLock { $0.append("past") } }
        cancelled.cancel()
        cancelled.cancel()
        try await waitUntil { fired.withLock { $0.contains("due") } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(fired.withLock { $0 } == ["past", "due"], "a deadline already passed fires first; a cancelled timer never")
        #expect(firedAt.withLock { $0 } >= start + 1_000_000_000, "not before its deadline")
        #expect(loop.waiting == 0, "nothing left once every timer fired or was cancelled")
    }

    @Test func timersAndWaitsShareTheLoopWithoutDelayingEachOther() async throws {
        let loop = ReadinessLoop()
        let pair = try SocketPair()
        // A timer far away, and a wait whose descriptor becomes ready now: the wait ends first.
        let far = loop.schedule(atNanos: MonotonicClock.nowNanos() + 3_600_000_000_000) {}
        let waiting = Task { try await loop.wait(for: .readable, on: pair.ours, deadlineNanos: soon) }
        try await waitUntil { loop.waiting == 2 }
        pair.send("x")
        #expect(try await waiting.value == .ready)
        // A timer sooner than what the loop sleeps until wakes it.
        let fired = Mutex(false)
        _ = loop.schedule(atNanos: MonotonicClock.nowNanos() + 5_000_000) { fired.withLock { $0 = true } }
        try await waitUntil { fired.withLock { $0 } }
        far.cancel()
        #expect(loop.waiting == 0)
    }

    @Test func aWatchRunsOnceWhenItsDescriptorBecomesReady() async throws {
        let loop = ReadinessLoop()
        let pair = try SocketPair()
        let runs = Mutex(0)
        try loop.watch(pair.ours, for: .readable) { runs.withLock { $0 += 1 } }
        try await Task.sleep(for: .milliseconds(30))
        #expect(runs.withLock { $0 } == 0, "nothing to read yet")
        pair.send("x")
        try await waitUntil { runs.withLock { $0 } == 1 }
        pair.send("y")
        try await Task.sleep(for: .milliseconds(30))
        #expect(runs.withLock { $0 } == 1, "once")
        #expect(loop.waiting == 0)
    }

    /// Starts `/bin/sh -c script` and returns its pid and a pidfd; the caller reaps it.
    static func spawn(_ script: String) throws -> (pid: pid_t, pidfd: Int32) {
        var pid: pid_t = 0
        let words: [String] = ["/bin/sh", "-c", script]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let rc = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
        guard rc == 0 else { throw RunnerError.system("posix_spawn", errno: rc, "test child") }
        return (pid, try ProcessDescriptor.open(pid: pid))
    }

    @Test func theReaperReportsEachChildsExitOnceWithItsStatusAndLeavesNoZombie() async throws {
        let exits = Mutex<[String: ProcessExit]>([:])
        var children: [(String, pid_t, Int32)] = []
        for (name, script) in [("exit 7", "exit 7"), ("killed", "kill -9 $$"), ("later", "sleep 0.2; exit 0")] {
            let (pid, pidfd) = try Self.spawn(script)
            children.append((name, pid, pidfd))
            try ProcessReaper.shared.watch(pidfd: pidfd) { exit in
                exits.withLock { e in
                    #expect(e[name] == nil, "reported once")
                    e[name] = exit
                }
            }
        }
        try await waitUntil { exits.withLock { $0.count } == 3 }
        #expect(exits.withLock { $0 } == ["exit 7": .exited(7), "killed": .signaled(SIGKILL), "later": .exited(0)])
        for (_, pid, pidfd) in children {
            var status: Int32 = 0
            #expect(waitpid(pid, &status, WNOHANG) == -1 && errno == ECHILD, "reaped: no zombie left")
            close(pidfd)
        }
    }

    @Test func blockingWorkBeyondTheThreadCapWaitsItsTurnAndAllOfItRuns() async throws {
        final class Most: Sendable { let threads = Mutex(0) }
        let most = Most()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<(3 * BlockingThread.maxThreads) {
                group.addTask {
                    try await BlockingThread.run { () throws(RunnerError) in
                        most.threads.withLock { $0 = max($0, BlockingThread.threads) }
                        usleep(20_000)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(most.threads.withLock { $0 } <= BlockingThread.maxThreads)
    }
}
