@testable import Runner
import RunnerOS
import Synchronization
import TestSupport
import Testing

/// Calls on the fake driver: Fn's errors, records, logs, listeners, timeouts and shutdown.
struct AgentCallTests {
    typealias H = FakeAgentHarness

    @Test func functionErrorsMapToFnsAndOnlyBrokenContainersEnd() async throws {
        try await H.withAgent(configure: { $0.maxResponseBytes = 1000 }) { agent, driver, _ in
            _ = try await agent.submit(H.function(), H.request("warm"))
            let failed = await H.failure(agent, H.function(), "status:502")
            #expect(failed?.code == .functionFailed && failed?.message == "function failed")
            let saidTimeout = await H.failure(agent, H.function(), "status:504")
            #expect(saidTimeout?.code == .callTimeout && saidTimeout?.message == "Timed out")
            #expect(driver.starts == 1, "502 and 504 from the function keep the container")

            let teapot = await H.failure(agent, H.function(), "status:418")
            #expect(teapot?.code == .functionInvalidResponse && teapot?.message == "invalid function response")
            await eventually("a status outside the contract ends the container") { driver.live.isEmpty }
            #expect(driver.starts == 1)

            let tooBig = await H.failure(agent, H.function(), "big:5000")
            #expect(tooBig?.code == .responseTooBig && tooBig?.message == "function response body too large")
            let crashed = await H.failure(agent, H.function(), "crash")
            #expect(crashed?.code == .functionResponse && crashed?.message == "error receiving function response")
            let oom = await H.failure(agent, H.function(), "oom")
            #expect(oom?.code == .outOfMemory && oom?.message.hasPrefix("container out of memory") == true)
            #expect(H.text(try await agent.submit(H.function(), H.request("after"))).hasSuffix(":after"))
        }
    }

    @Test func aCallPastItsTimeoutGets504AndEndsItsContainerAndTheNextCallSucceeds() async throws {
        try await H.withAgent { agent, driver, clock in
            async let late = H.failure(agent, H.function(timeout: 2), "sleep:5000")
            await advance(clock, by: .milliseconds(100), until: "the call timed out") { driver.live.isEmpty && driver.starts == 1 }
            let error = await late
            #expect(error?.code == .callTimeout && error?.message == "Timed out")
            let next = try await agent.submit(H.function(timeout: 2), H.request("next"))
            #expect(next.status == 200)
            #expect(driver.starts == 2)
        }
    }

    @Test func launchErrorsGoToTheCallThatAskedForTheContainerWithFnsMessages() async throws {
        try await H.withAgent(onStart: { task, n throws(RunnerError) in
            if task.function.fnID == "bad" { throw RunnerError(.containerInit, "exited before it listened", step: "wait for function") }
            if task.function.fnID == "slow" { throw RunnerError(.containerInitTimeout, "no socket", step: "wait for function") }
            if task.function.fnID == "flaky" && n == 1 { throw RunnerError(.containerInit, "first start fails", step: "wait for function") }
        }) { agent, driver, _ in
            let bad = await H.failure(agent, H.function("bad"), "x")
            #expect(bad?.code == .containerInit)
            #expect(bad?.message == "Container failed to initialize, please ensure you are using the latest fdk and check the logs")
            let slow = await H.failure(agent, H.function("slow"), "x")
            #expect(slow?.code == .containerInitTimeout)
            #expect(slow?.message == "Container initialization timed out, please ensure you are using the latest fdk and check the logs")
            let record = try agent.makeCall(H.function("bad"), H.request("x"))
            _ = try? await agent.submit(record)
            #expect(record.record.status == .error && record.record.startedAt == nil)
        }
        try await H.withAgent(onStart: { task, n throws(RunnerError) in
            if n == 1 { throw RunnerError(.containerInit, "first start fails", step: "wait for function") }
        }) { agent, driver, _ in
            let first = await H.failure(agent, H.function(), "x")
            #expect(first?.code == .containerInit)
            let laterStatus = try await agent.submit(H.function(), H.request("y")).status
            #expect(laterStatus == 200, "a later call launches again")
            #expect(driver.starts == 2)
        }
    }

    @Test func aLaunchThatFailsAfterItsCallerLeftLeavesNoErrorForARetryWithTheSameID() async throws {
        let release = AsyncEvent()
        try await H.withAgent(onStart: { _, n throws(RunnerError) in
            if n == 1 {
                await release.waitIgnoringCancellation()
                throw RunnerError(.containerInit, "the first start fails late", step: "wait for function")
            }
        }) { agent, driver, _ in
            var request = H.request("x")
            request.callID = "01JRETRYRETRYRETRYRETRYRET"
            let first = Task { try await agent.submit(H.function(), request) }
            await eventually("the launch began") { driver.starts == 1 }
            first.cancel()
            #expect(await (try? first.value) == nil, "the first caller left")
            release.fire()
            await eventually("the late launch failure was handled") { PrometheusText.count(of: "fn_launch_failures_total", in: agent.prometheusText()) == 1 }
            #expect(agent.state.withLock { $0.launchErrors.isEmpty && $0.waits.isEmpty }, "nobody waits for that error: not kept")
            // A detached call retried under the same id gets a container, not the first attempt's error.
            let retried = try await agent.submit(H.function(), request)
            #expect(retried.status == 200)
            #expect(driver.starts == 2)
        }
    }

    @Test func aCallRecordTellsWhatHappened() async throws {
        try await H.withAgent { agent, _, _ in
            let call = try agent.makeCall(H.function(), H.request("log:hello from the function\n"))
            #expect(call.record.status == .queued && call.id.count == 26)
            _ = try await agent.submit(call)
            let r = call.record
            #expect(r.status == .success && r.error == nil)
            #expect(r.startedAt != nil && r.completedAt != nil && r.executionDurationNanos != nil)
            #expect(r.fnID == "f1" && r.appName == "myapp" && r.method == "POST" && r.url == "http://localhost:8080/invoke/f1")
            #expect(r.stats?.reusedContainer == false && r.stats?.cpuNanos == 1000 && r.stats?.memoryPeakBytes == 8192)
            #expect(call.log.text == "hello from the function\n")

            let second = try agent.makeCall(H.function(), H.request("status:502"))
            _ = try? await agent.submit(second)
            #expect(second.record.status == .error && second.record.error == "function failed" && second.record.errorCode == "function_failed")
            #expect(second.record.stats?.reusedContainer == true)

            let third = try agent.makeCall(H.function(), H.request("status:504"))
            _ = try? await agent.submit(third)
            #expect(third.record.status == .timeout)
        }
    }

    @Test func theCallLogKeepsItsLimitAndOneTruncationLine() {
        let log = CallLog(limitBytes: 10)
        log.write("0123456789abcdef")
        log.write("more")
        #expect(log.text == "0123456789\n-----max log size 10 bytes exceeded, truncating log-----\n")
        #expect(log.isTruncated)
        let exact = CallLog(limitBytes: 4)
        exact.write("abcd")
        #expect(exact.text == "abcd" && !exact.isTruncated)
    }

    final class Recorder: CallListener {
        let failBefore: Bool
        let failAfter: Bool
        let seen = Mutex<[String]>([])
        init(failBefore: Bool = false, failAfter: Bool = false) {
            self.failBefore = failBefore
            self.failAfter = failAfter
        }
        func beforeCall(_ call: Call) async throws(RunnerError) {
            seen.withLock { $0.append("before \(call.record.status)") }
            if failBefore { throw RunnerError(.invalidArgument, "quota exceeded", step: "before call") }
        }
        func afterCall(_ call: Call) async throws(RunnerError) {
            seen.withLock { $0.append("after \(call.record.status)") }
            if failAfter { throw RunnerError(.invalidArgument, "audit failed", step: "after call") }
        }
    }

    @Test func listenersSeeEveryCallAndCanFailIt() async throws {
        try await H.withAgent { agent, driver, _ in
            let ok = Recorder()
            agent.addListener(ok)
            _ = try await agent.submit(H.function(), H.request("x"))
            #expect(ok.seen.withLock { $0 } == ["before running", "after success"])
        }
        try await H.withAgent { agent, driver, _ in
            agent.addListener(Recorder(failBefore: true))
            let call = try agent.makeCall(H.function(), H.request("x"))
            await #expect(throws: RunnerError.self) { _ = try await agent.submit(call) }
            #expect(call.record.error == "quota exceeded")
            #expect(driver.containers.allSatisfy { $0.calls == 0 }, "the function never ran")
            #expect(driver.live.count == 1, "the container stays for the next call")
        }
        try await H.withAgent { agent, driver, _ in
            agent.addListener(Recorder(failAfter: true))
            let call = try agent.makeCall(H.function(), H.request("x"))
            let error = await #expect(throws: RunnerError.self) { _ = try await agent.submit(call) }
            #expect(error?.message == "audit failed" && call.record.status == .error)
            #expect(driver.containers.first?.calls == 1)
        }
    }

    @Test func shutdownAnswersWaitingCalls503LetsRunningOnesFinishAndEndsEverything() async throws {
        let gate = AsyncEvent()
        try await H.withAgent(
            onStart: { task, _ throws(RunnerError) in if task.function.fnID == "stuck" { _ = await gate.wait() } },
            configure: { $0.shutdownGraceMillis = 10_000 }
        ) { agent, driver, clock in
            _ = try await agent.submit(H.function("idle"), H.request("x"))
            async let running = agent.submit(H.function("run"), H.request("sleep:2000"))
            async let waiting = H.failure(agent, H.function("stuck"), "x")
            await eventually("one call runs and one waits") {
                driver.containers.contains { $0.task.function.fnID == "run" && $0.calls == 1 } && driver.starts == 3
            }
            async let stopped: Void = agent.shutdown()
            #expect(await waiting?.code == .serverBusy)
            await eventually("the idle container ended") { driver.containers.first { $0.task.function.fnID == "idle" }!.isClosed }
            let late = await H.failure(agent, H.function("idle"), "x")
            #expect(late?.code == .serverBusy)
            await advance(clock, by: .milliseconds(100), until: "the running call finished") {
                H.running(agent, H.function("run")) == 0
            }
            let runningStatus = try await running.status
            #expect(runningStatus == 200, "a running call finishes within the grace period")
            gate.fire()
            await stopped
        }
    }

    @Test func shutdownEndsCallsThatOutliveTheGracePeriod() async throws {
        try await H.withAgent(configure: { $0.shutdownGraceMillis = 1000 }) { agent, driver, clock in
            async let running = H.failure(agent, H.function(timeout: 60), "sleep:30000")
            await eventually("the call runs") { driver.containers.first?.calls == 1 }
            async let stopped: Void = agent.shutdown()
            await advance(clock, by: .milliseconds(100), until: "the grace period passed and the call ended") { driver.live.isEmpty }
            #expect(await running?.code == .functionResponse)
            await stopped
        }
    }

    @Test func aContainerWhoseCallEndsDuringShutdownEndsWithoutWaitingForItsIdleTimeout() async throws {
        try await H.withAgent(configure: {
            $0.shutdownGraceMillis = 10_000
            $0.freezeIdleMillis = -1
        }) { agent, driver, clock in
            let f = H.function(idleTimeout: 3600)
            async let running = agent.submit(f, H.request("sleep:100"))
            await eventually("the call runs") { driver.containers.first?.calls == 1 }
            async let stopped: Void = agent.shutdown()
            await eventually("the shutdown began") { agent.isShuttingDown }
            await advance(clock, by: .milliseconds(10), until: "the call finished") { H.running(agent, f) == 0 }
            let status = try await running.status
            #expect(status == 200, "it finished within the grace period")
            await stopped
            // The clock stands still from here: an hour of idle timeout never passes, and a good
            // call's end wakes nobody; the shutdown alone must end the container.
            await eventually("its container ended", within: 5) { driver.live.isEmpty }
        }
    }
}
