@testable import NativeRuntime
@testable import Runner
import RunnerOS
import Testing

/// The cold `default` format on the fake driver, and how its environment is built.
struct AgentColdFormatTests {
    typealias H = FakeAgentHarness

    @Test func everyColdCallGetsAContainerOfItsOwnAndReleasesItsToken() async throws {
        try await H.withAgent { agent, driver, _ in
            let f = H.function(format: "default")
            let r1 = try await agent.submit(f, H.request("a"))
            let r2 = try await agent.submit(f, H.request("b"))
            #expect(H.text(r1) == "cold:a" && H.text(r2) == "cold:b")
            #expect(driver.coldRuns.count == 2 && driver.starts == 0)
            #expect(Set(driver.coldRuns.map(\.name)).count == 2)
            #expect(agent.tracker.utilization.memoryUsedBytes == 0)
        }
    }

    @Test func aColdFunctionSeesTheRequestInItsEnvironment() async throws {
        try await H.withAgent { agent, _, _ in
            var request = H.request("env")
            request.headers = [("x-custom", "one"), ("X-Custom", "two"), ("Connection", "close"), ("Content-Type", "text/plain")]
            let call = try agent.makeCall(H.function(format: "default", config: ["GREETING": "hi"]), request)
            let env = H.text(try await agent.submit(call)).split(separator: "\n").map(String.init)
            #expect(env.contains("FN_METHOD=POST"))
            #expect(env.contains("FN_REQUEST_URL=http://localhost:8080/invoke/f1"))
            #expect(env.contains("FN_CALL_ID=\(call.id)"))
            #expect(env.contains("FN_HEADER_Content-Type=text/plain"))
            #expect(env.contains("FN_HEADER_X-Custom=one, two"))
            #expect(!env.contains { $0.hasPrefix("FN_HEADER_Connection") }, "hop-by-hop headers are not passed")
            #expect(env.contains("GREETING=hi") && env.contains("FN_FORMAT=default"))
            #expect(env.contains { $0.hasPrefix("FN_DEADLINE=") && $0.hasSuffix("Z") && $0.contains(".") })
            #expect(!env.contains { $0.hasPrefix("FN_LISTENER") }, "cold functions do not listen")
        }
    }

    @Test func aColdExitCodeOOMOrTimeoutBecomesFnsError() async throws {
        try await H.withAgent { agent, _, clock in
            let f = H.function(timeout: 1, format: "default")
            let exit = await H.failure(agent, f, "exit:2")
            #expect(exit?.code == .containerExit && exit?.message == "container exit code 2")
            let oom = await H.failure(agent, f, "oom")
            #expect(oom?.code == .outOfMemory)
            // The call's 1 s counts from its start, which a loaded machine can delay past any
            // fixed number of clock steps: step until it has ended, not a set number of times.
            let ended = AsyncEvent()
            async let late = { () async -> RunnerError? in
                defer { ended.fire() }
                return await H.failure(agent, f, "sleep:5000")
            }()
            await advance(clock, by: .milliseconds(100), until: "the 1 s call timed out", maxSteps: 50) { ended.hasFired }
            #expect(await late?.code == .callTimeout)
            let call = try agent.makeCall(f, H.request("x"))
            _ = try await agent.submit(call)
            #expect(call.log.text == "cold stderr\n")
            #expect(call.record.stats?.cpuNanos == 7 && call.record.stats?.reusedContainer == false)
        }
    }

    @Test func anUnknownFormatIsRefusedByName() async throws {
        try await H.withAgent { agent, _, _ in
            let error = await H.failure(agent, H.function(format: "cloudevent"), "x")
            #expect(error?.code == .invalidArgument && error?.message.contains("cloudevent") == true)
        }
    }

    @Test func headerNamesAreInGosCanonicalForm() {
        #expect(GoHeaderName.canonical("content-type") == "Content-Type")
        #expect(GoHeaderName.canonical("X-FOO-bar") == "X-Foo-Bar")
        #expect(GoHeaderName.canonical("fn_path") == "Fn_path")
        #expect(GoHeaderName.canonical("Fn-Call-Id") == "Fn-Call-Id", "already canonical: unchanged")
        #expect(GoHeaderName.canonical("x-1st--header") == "X-1st--Header")
        #expect(GoHeaderName.canonical("bad name") == "bad name", "not a token: left as it is, as Go does")
        #expect(GoHeaderName.canonical("é-x") == "é-x")
    }
}

/// The FN_* variables.
struct AgentConfigurationTests {
    @Test func fnVariablesSetTheAgentsConfiguration() throws {
        let c = try AgentConfiguration.fromEnvironment([
            "FN_FREEZE_IDLE_MSECS": "-1", "FN_HOT_POLL_MSECS": "50", "FN_HOT_LAUNCHER_TIMEOUT_MSECS": "1000",
            "FN_HOT_START_TIMEOUT_MSECS": "2000", "FN_MAX_RESPONSE_SIZE": "2048", "FN_MAX_LOG_SIZE_BYTES": "10",
            "FN_ENABLE_NB_RESOURCE_TRACKER": "1", "FN_MAX_WAIT_MSECS": "300", "FN_SHUTDOWN_GRACE_MSECS": "5",
            "FN_MAX_HDR_RESPONSE_SIZE": "1024",
        ])
        #expect(c.freezeIdleMillis == -1 && c.hotPollMillis == 50 && c.hotLauncherTimeoutMillis == 1000)
        #expect(c.hotStartTimeoutMillis == 2000 && c.maxResponseBytes == 2048 && c.maxLogBytes == 10)
        #expect(c.nonBlockingResources && c.maxWaitMillis == 300 && c.shutdownGraceMillis == 5)
        #expect(c.maxResponseHeaderBytes == 1024)
        #expect(try AgentConfiguration.fromEnvironment(["FN_FREEZE_IDLE_MSECS": ""]) == AgentConfiguration(), "empty keeps the default")
        let zero = try AgentConfiguration.fromEnvironment(["FN_MAX_HDR_RESPONSE_SIZE": "0"])
        #expect(zero.maxResponseHeaderBytes == HTTPStreamConnection.defaultMaxHeaderBytes, "0 is the default, as Go's 0 is")
    }

    @Test func theReclaimAndDetachedCallVariablesAreReadAndCheckedToo() throws {
        #expect(try AgentConfiguration.fromEnvironment(["FN_FREEZE_RECLAIM": "true"]).freezeReclaim)
        let a = try AsyncCallConsumer.Configuration.fromEnvironment(
            ["FN_MAX_ASYNC_RUNNING": "3", "FN_ASYNC_CHEW_POLL_MSECS": "250", "FN_ASYNC_MAX_ATTEMPTS": "2"])
        #expect(a.maxRunning == 3 && a.pollMillis == 250 && a.maxAttempts == 2)
        for (name, value) in [("FN_MAX_ASYNC_RUNNING", "0"), ("FN_ASYNC_CHEW_POLL_MSECS", "often"), ("FN_ASYNC_MAX_ATTEMPTS", "0")] {
            #expect {
                _ = try AsyncCallConsumer.Configuration.fromEnvironment([name: value])
            } throws: { error in
                (error as? RunnerError)?.message.contains(name) == true
            }
        }
        #expect {
            _ = try AgentConfiguration.fromEnvironment(["FN_FREEZE_RECLAIM": "sometimes"])
        } throws: { error in
            (error as? RunnerError)?.message.contains("FN_FREEZE_RECLAIM") == true
        }
    }

    @Test func theDriverReadsItsOwnVariables() throws {
        let c = try NativeDriver.Configuration.fromEnvironment(["FN_HOT_PULL_TIMEOUT_MSECS": "1000", "FN_MAX_PIDS": "99"])
        #expect(c.pullTimeoutMillis == 1000 && c.maxPids == 99)
        #expect(throws: RunnerError.self) { try NativeDriver.Configuration.fromEnvironment(["FN_MAX_PIDS": "0"]) }
    }

    @Test func theDriverTakesFnsFourRlimitsWithFnsDefaults() throws {
        let defaults = try NativeDriver.Configuration.fromEnvironment([:]).rlimits
        #expect(defaults.map(\.soft) == [350, 65536, 5000, 819_200])
        #expect(defaults.allSatisfy { $0.soft == $0.hard })
        let set = try NativeDriver.Configuration.fromEnvironment([
            "FN_MAX_OPEN_FILES": "1024", "FN_MAX_LOCKED_MEMORY": "0", "FN_MAX_PENDING_SIGNALS": "64", "FN_MAX_MESSAGE_QUEUE": "4096",
        ]).rlimits
        #expect(set.map(\.soft) == [1024, 0, 64, 4096])
        for (name, value) in [("FN_MAX_OPEN_FILES", "0"), ("FN_MAX_LOCKED_MEMORY", "-1"), ("FN_MAX_MESSAGE_QUEUE", "lots")] {
            #expect {
                _ = try NativeDriver.Configuration.fromEnvironment([name: value])
            } throws: { error in
                (error as? RunnerError)?.message.contains(name) == true
            }
        }
    }

    @Test func aBadValueNamesTheVariable() {
        for (name, value) in [
            ("FN_FREEZE_IDLE_MSECS", "soon"), ("FN_MAX_RESPONSE_SIZE", "-5"), ("FN_HOT_POLL_MSECS", "0"),
            ("FN_ENABLE_NB_RESOURCE_TRACKER", "maybe"),
        ] {
            #expect {
                _ = try AgentConfiguration.fromEnvironment([name: value])
            } throws: { error in
                (error as? RunnerError)?.code == .invalidArgument && (error as? RunnerError)?.message.contains(name) == true
            }
        }
    }
}
