import Foundation
import LoopExecutors
import NIOCore
import NIOPosix
import NativeRuntime
import Runner
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The http-stream client against hello-stream run as a plain process (no sandbox needed).
@Suite struct HTTPStreamConnectionTests {
    final class Function {
        let dir: String
        let process: Subprocess
        init() async throws {
            dir = "/tmp/fnrunner-test-hs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try FileSystem.makeDirectories(dir)
            let binary = try await Fixtures.busybox() + "/bin/hello-stream"
            process = try Subprocess(["/usr/bin/env", "-i", "FN_FORMAT=http-stream", "FN_LISTENER=unix:\(dir)/lsnr.sock", "TEST_VAR=present", binary])
            try await waitUntil { FileSystem.exists(dir + "/lsnr.sock") }
        }
        func connect(readOnLoop: Bool = true) async throws -> HTTPStreamConnection {
            try await HTTPStreamConnection.make(dir + "/lsnr.sock", readOnLoop: readOnLoop)
        }
        deinit {
            process.signal(SIGKILL)
            process.wait()
            try? FileSystem.removeTree(dir)
        }
    }

    func request(_ body: String, headers: [(String, String)] = []) -> FunctionRequest {
        FunctionRequest(callID: "01TEST", deadline: "2030-01-01T00:00:00Z", contentType: "text/plain", headers: headers, body: Array(body.utf8))
    }

    /// Whether an event loop reads the socket (as the agent's connections are read) or the
    /// calling task does (as pipes are): the same exchanges must behave the same either way.
    static let readers = [true, false]

    /// Far enough that a call made of several waits still ends in time when other tests hold the
    /// cooperative pool for seconds (the call's task must run again after each wait).
    var soon: UInt64 { MonotonicClock.nowNanos() + 60_000_000_000 }

    @Test(arguments: readers) func oneConnectionServesManyCallsInTurn(readOnLoop: Bool) async throws {
        let f = try await Function()
        let c = try await f.connect(readOnLoop: readOnLoop)
        for i in 0..<50 {
            let r = try await c.call(request("n\(i)"), deadlineNanos: soon)
            #expect(r.status == 200)
            #expect(String(decoding: r.body, as: UTF8.self) == "Hello n\(i)")
        }
        #expect(try await c.call(request("!env TEST_VAR"), deadlineNanos: soon).body == Array("present".utf8))
    }

    /// The loops of NIO's shared group, which function sockets are read on.
    static let sharedLoops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())

    @Test(.enabled(if: sharedLoops.count >= 2, "NIO's shared group has one loop here (it has one per CPU): no other loop to compare with"))
    func aSocketIsReadOnTheEventLoopItsFirstCallRanOn() async throws {
        let f = try await Function()
        let c = try await f.connect()
        let (home, other) = (Self.sharedLoops[1], Self.sharedLoops[0])
        #expect(try await other.submit { c.isReadOnCurrentLoop }.get(), "before its first call, any caller's loop would read it")
        let r = try await withTaskExecutorPreference(EventLoopTaskExecutor(home)) { try await c.call(request("loop"), deadlineNanos: soon) }
        #expect(String(decoding: r.body, as: UTF8.self) == "Hello loop")
        #expect(try await home.submit { c.isReadOnCurrentLoop }.get())
        #expect(try await !other.submit { c.isReadOnCurrentLoop }.get())
        #expect(!c.isReadOnCurrentLoop, "the test's task runs on no loop")
        // Calls from another loop are still answered: their answers cross threads.
        let again = try await withTaskExecutorPreference(EventLoopTaskExecutor(other)) { try await c.call(request("again"), deadlineNanos: soon) }
        #expect(String(decoding: again.body, as: UTF8.self) == "Hello again")
        #expect(try await home.submit { c.isReadOnCurrentLoop }.get())
    }

    @Test func aConnectionReadingForItselfIsReadOnNoLoop() async throws {
        let f = try await Function()
        let c = try await f.connect(readOnLoop: false)
        _ = try await c.call(request("x"), deadlineNanos: soon)
        #expect(try await !Self.sharedLoops[0].submit { c.isReadOnCurrentLoop }.get())
    }

    @Test func statusesAndHeadersComeBackAsTheFunctionSentThem() async throws {
        let f = try await Function()
        let c = try await f.connect()
        let r = try await c.call(request("!status 418", headers: [("Fn-Intent", "httprequest")]), deadlineNanos: soon)
        #expect(r.status == 200)
        #expect(r.header("Fn-Http-Status") == "418")
        #expect(r.header("fn-fdk-version") == "fdk-c-test/1")
        #expect(try await c.call(request("!status 502"), deadlineNanos: soon).status == 502)
    }

    @Test(arguments: readers) func aLargeResponseArrivesWhole(readOnLoop: Bool) async throws {
        let f = try await Function()
        let c = try await f.connect(readOnLoop: readOnLoop)
        let r = try await c.call(request("!big 3000000"), deadlineNanos: soon)
        #expect(r.body.count == 3_000_000 && r.body.allSatisfy { $0 == UInt8(ascii: "x") })
        #expect(try await c.call(request("after"), deadlineNanos: soon).body == Array("Hello after".utf8))
    }

    @Test(arguments: readers) func aCallPastItsDeadlineTimesOut(readOnLoop: Bool) async throws {
        let f = try await Function()
        let c = try await f.connect(readOnLoop: readOnLoop)
        let error = await #expect(throws: RunnerError.self) {
            try await c.call(self.request("!sleep 2000"), deadlineNanos: MonotonicClock.nowNanos() + 100_000_000)
        }
        #expect(error?.code == .timeout)
    }

    /// A connection read on a loop keeps one deadline timer across its calls, armed again for
    /// the call in progress when it fires early: each call must still end at its own deadline.
    @Test func eachCallIsTimedByItsOwnDeadlineNotByATimerAnEarlierCallArmed() async throws {
        let f = try await Function()
        let c = try await f.connect(readOnLoop: true)
        // The first call arms the timer for its short deadline, and is answered well before it.
        #expect(try await c.call(request("one"), deadlineNanos: MonotonicClock.nowNanos() + 300_000_000).status == 200)
        // The second outlives that deadline, far inside its own: the timer fires meanwhile and
        // must not end it.
        let slept = try await c.call(request("!sleep 700"), deadlineNanos: soon)
        #expect(String(decoding: slept.body, as: UTF8.self) == "slept 700")
        // The third has a deadline earlier than the armed timer (the second's, a minute off): it
        // must time out at its own, not a minute later.
        let start = MonotonicClock.nowNanos()
        let error = await #expect(throws: RunnerError.self) {
            try await c.call(self.request("!sleep 120000"), deadlineNanos: start + 200_000_000)
        }
        #expect(error?.code == .timeout)
        #expect(MonotonicClock.nowNanos() - start < 30_000_000_000, "ended at its own deadline, not at the armed timer's")
    }

    @Test(arguments: readers) func cancellingTheCallingTaskEndsACallInFlightAsCancelled(readOnLoop: Bool) async throws {
        let f = try await Function()
        let c = try await f.connect(readOnLoop: readOnLoop)
        // Far off, so that however late this test's own task runs again, the cancel comes first.
        let late = MonotonicClock.nowNanos() + 300_000_000_000
        let call = Task { try await c.call(self.request("!sleep 120000"), deadlineNanos: late) }
        try await Task.sleep(for: .milliseconds(50))
        call.cancel()
        let error = await #expect(throws: RunnerError.self) { try await call.value }
        #expect(error?.code == .callCancelled, "\(String(describing: error))")
    }

    @Test func aCallIDOrContentTypeWithALineBreakIsRefusedAndTheConnectionServesOn() async throws {
        let f = try await Function()
        let c = try await f.connect(readOnLoop: true)
        for (id, type) in [("01TEST\r\nX-Injected: yes", "text/plain"), ("01TEST", "text/plain\nX-Injected: yes")] {
            let bad = FunctionRequest(callID: id, deadline: "2030-01-01T00:00:00Z", contentType: type, body: Array("x".utf8))
            let error = await #expect(throws: RunnerError.self) { try await c.call(bad, deadlineNanos: self.soon) }
            #expect(error?.code == .invalidArgument && error?.message.contains("line break") == true, "\(String(describing: error))")
        }
        #expect(try await c.call(request("after"), deadlineNanos: soon).body == Array("Hello after".utf8))
    }

    @Test(arguments: readers) func aFunctionThatDiesMidCallIsAClearError(readOnLoop: Bool) async throws {
        let f = try await Function()
        let c = try await f.connect(readOnLoop: readOnLoop)
        let error = await #expect(throws: RunnerError.self) { try await c.call(self.request("!crash"), deadlineNanos: self.soon) }
        #expect(error?.message.contains("closed the connection") == true, "\(String(describing: error))")
    }

    /// A function that answers each request on one connection with the next of `answers`, as
    /// bytes, then closes; killed and removed when dropped. Its socket appears under its name
    /// only once it listens (else a connect can come too early).
    final class RawFunction {
        let dir = "/tmp/fnrunner-test-raw-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let process: Subprocess
        var path: String { dir + "/raw.sock" }

        /// `then`: Python run after the answers, with the connection still open as `c` and this
        /// function's directory as `d`.
        init(_ answers: [String], then: String = "") async throws {
            try FileSystem.makeDirectories(dir)
            let hexes = answers.map { "bytes.fromhex(\"" + Array($0.utf8).map { String(format: "%02x", $0) }.joined() + "\")" }
            let script = """
                import os, socket
                d = "\(dir)"
                s = socket.socket(socket.AF_UNIX); s.bind("\(dir)/raw.sock.new"); s.listen(1); os.rename("\(dir)/raw.sock.new", "\(dir)/raw.sock")
                c, _ = s.accept()
                for a in [\(hexes.joined(separator: ", "))]:
                    c.recv(65536); c.sendall(a)
                \(then)
                c.close()
                """
            process = try Subprocess(["/usr/bin/python3", "-c", script])
            try await waitUntil(timeoutMillis: helperStartMillis) { FileSystem.exists(dir + "/raw.sock") }
        }

        func connect(readOnLoop: Bool = true) async throws -> HTTPStreamConnection {
            try await HTTPStreamConnection.make(path, readOnLoop: readOnLoop)
        }

        deinit {
            process.signal(SIGKILL)
            process.wait()
            try? FileSystem.removeTree(dir)
        }
    }

    @Test(arguments: readers) func trailersAfterAChunkedAnswerAreConsumedSoTheNextCallParses(readOnLoop: Bool) async throws {
        let f = try await RawFunction([
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond",
        ])
        defer { withExtendedLifetime(f) {} }
        let c = try await f.connect(readOnLoop: readOnLoop)
        #expect(try await c.call(request("one"), deadlineNanos: soon, maxBodyBytes: 1 << 20).body == Array("hello".utf8))
        let second = try await c.call(request("two"), deadlineNanos: soon, maxBodyBytes: 1 << 20)
        #expect(second.body == Array("second".utf8) && !second.endsContainer)
    }

    @Test(arguments: readers) func aBodyEndedByCloseIsReadWholeAndEndsTheContainer(readOnLoop: Bool) async throws {
        let f = try await RawFunction(["HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"])
        defer { withExtendedLifetime(f) {} }
        let c = try await f.connect(readOnLoop: readOnLoop)
        let r = try await c.call(request("x"), deadlineNanos: soon, maxBodyBytes: 1 << 20)
        #expect(r.status == 200 && r.body == Array("until the end".utf8))
        #expect(r.endsContainer, "the connection is gone: the container serves no other call")
    }

    @Test(arguments: readers) func aNoContentAnswerHasNoBodyAndKeepsTheConnection(readOnLoop: Bool) async throws {
        let f = try await RawFunction(["HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
        defer { withExtendedLifetime(f) {} }
        let c = try await f.connect(readOnLoop: readOnLoop)
        let r = try await c.call(request("x"), deadlineNanos: soon, maxBodyBytes: 1 << 20)
        #expect(r.status == 204 && r.body.isEmpty && !r.endsContainer)
        #expect(try await c.call(request("y"), deadlineNanos: soon, maxBodyBytes: 1 << 20).body == Array("ok".utf8))
    }

    @Test func bytesNoCallAsksForStopBeingReadOnceTheInboxHoldsItsLimit() async throws {
        // One answer, then 4 MiB more than it: only a runner that kept reading would take them all.
        let flood = 4 << 20
        let f = try await RawFunction(
            ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            then: "c.sendall(b'x' * \(flood)); open(d + '/sent', 'w').close()")
        defer { withExtendedLifetime(f) {} }
        let c = try await f.connect()
        #expect(try await c.call(request("x"), deadlineNanos: soon, maxBodyBytes: 1 << 20).body == Array("ok".utf8))
        try await waitUntil { c.bufferedBytes >= HTTPStreamConnection.unreadLimit }
        try await Task.sleep(for: .milliseconds(300))
        // At most one more read (64 KiB) than the limit; the kernel's buffers hold the rest back.
        #expect(c.bufferedBytes < HTTPStreamConnection.unreadLimit + 65536)
        #expect(!FileSystem.exists(f.dir + "/sent"), "the function could send everything: nothing pushed back")
    }

    @Test func aConnectionReadOnALoopClosesTheSocketWhenDropped() async throws {
        let f = try await RawFunction(
            ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            then: "while c.recv(4096): pass\nopen(d + '/eof', 'w').close()")
        defer { withExtendedLifetime(f) {} }
        var c: HTTPStreamConnection? = try await f.connect()
        #expect(try await c?.call(request("x"), deadlineNanos: soon, maxBodyBytes: 1 << 20).body == Array("ok".utf8))
        c = nil
        // The function reads end of file only once both of the runner's descriptors are closed.
        do {
            try await waitUntil(timeoutMillis: 60_000) { FileSystem.exists(f.dir + "/eof") }
        } catch {
            let peers = try? await Shell.output("ss -xpn").split(separator: "\n").filter { $0.contains("pid=\(f.process.pid),") }
            Issue.record("no end of file for the function: \(error); its sockets: \(peers ?? [])")
        }
    }

    /// The one call of a function that sends `answer`.
    func callOnce(answering answer: String) async throws -> FunctionResponse {
        let f = try await RawFunction([answer])
        defer { withExtendedLifetime(f) {} }
        return try await f.connect().call(request("x"), deadlineNanos: soon, maxBodyBytes: 1 << 20)
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 5,,5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ;name=value\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\t\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
    ])
    func aRepeatedLengthOfOneValueOrAChunkSizeWithSpacesAndExtensionsIsRead(answer: String) async throws {
        #expect(try await callOnce(answering: answer).body == Array("hello".utf8))
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 2\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 2\r\n\r\nhello",
        // Only ASCII whitespace is trimmed, as in Go's net/http: a no-break space is no digit.
        "HTTP/1.1 200 OK\r\nContent-Length: 5\u{00A0}\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\u{00A0}5\r\nhello\r\n0\r\n\r\n",
    ])
    func aMalformedLengthOrChunkSizeIsAClearErrorNotACrash(answer: String) async throws {
        await #expect {
            _ = try await self.callOnce(answering: answer)
        } throws: { error in
            guard let e = error as? RunnerError else { return false }
            return e.code == .invalidArgument && (e.message.contains("chunk size") || e.message.contains("Content-Length"))
        }
    }
}

@Suite struct FunctionDefinitionTests {
    @Test func fnConfigOverridesAppConfigAndTheFnVariablesOverrideBoth() {
        let f = FunctionDefinition(
            appID: "a1", appName: "app", fnID: "f1", fnName: "fn", image: "img", memoryMB: 256,
            appConfig: ["SHARED": "app", "ONLY_APP": "1", "FN_MEMORY": "1"], fnConfig: ["SHARED": "fn"])
        let env = f.environment
        #expect(env.contains("SHARED=fn"))
        #expect(env.contains("ONLY_APP=1"))
        #expect(env.contains("FN_MEMORY=256"))
        for e in ["FN_APP_ID=a1", "FN_FN_ID=f1", "FN_APP_NAME=app", "FN_FN_NAME=fn", "FN_TYPE=sync", "FN_FORMAT=http-stream",
                  "FN_LISTENER=unix:/tmp/iofs/lsnr.sock"] {
            #expect(env.contains(e), "\(e)")
        }
    }

    @Test func aConfigChangeGivesANewSlotKey() {
        let a = FunctionDefinition(appID: "a", appName: "app", fnID: "f", fnName: "fn", image: "img")
        var b = a
        b.fnConfig = ["X": "1"]
        #expect(a.slotKey != b.slotKey)
        #expect(a.slotKey == a.slotKey)
    }
}

extension HTTPStreamConnection {
    /// A connection to the socket at `path`, read by an event loop or by its calls.
    static func make(_ path: String, readOnLoop: Bool) async throws -> HTTPStreamConnection {
        let c = try HTTPStreamConnection(socketPath: path)
        if readOnLoop { c.readOnSharedLoop() }
        return c
    }
}
