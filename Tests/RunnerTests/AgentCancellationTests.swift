import NativeRuntime
@testable import Runner
import RunnerOS
import Sandbox
import TestSupport
import Testing

/// An agent whose `run()` is cancelled instead of shut down (its owner's task group was
/// cancelled): nothing spins, idle containers end, a running call finishes first.
struct AgentCancellationTests {
    typealias H = FakeAgentHarness

    /// `agent.run()` in a task of its own, which the test cancels, and an event fired once it returned.
    static func run(_ agent: Agent) -> (Task<Void, Never>, AsyncEvent) {
        let returned = AsyncEvent()
        return (Task {
            await agent.run()
            returned.fire()
        }, returned)
    }

    @Test func aCancelledRunEndsIdleContainersAtOnceLetsARunningCallFinishAndThenReturns() async throws {
        let clock = ManualClock()
        let driver = FakeDriver(clock: clock)
        let agent = Agent(
            configuration: AgentConfiguration(), driver: driver,
            tracker: ResourceTracker(totalMemoryBytes: 1 << 30, totalCPUMillicores: 4000), clock: clock)
        let (run, returned) = Self.run(agent)
        defer { run.cancel() }  // on a failure below too: the agent then ends what it has
        let idle = H.function("idle"), busy = H.function("busy")
        #expect(H.text(try await agent.submit(idle, H.request("warm"))).hasSuffix("warm"))
        // The fake clock never reaches the idle timeout or the freeze delay by itself.
        let call = Task { try await agent.submit(busy, H.request("sleep:1000")) }
        defer { call.cancel() }
        await eventually("the busy fn's call runs") { H.running(agent, busy) == 1 }

        run.cancel()
        await eventually("the idle container ended", within: 10) {
            driver.containers.first { $0.task.function.fnID == "idle" }?.isClosed == true
        }
        #expect(driver.containers.first { $0.task.function.fnID == "busy" }?.isClosed == false, "a call still has it")
        #expect(!returned.hasFired, "run() waits for the running call")

        // Stepped until it ended: the call's sleep is on the clock only once it reached the container.
        await advance(clock, by: .milliseconds(500), until: "the busy call ended") { H.running(agent, busy) == 0 }
        #expect(H.text(try await call.value).hasSuffix("slept 1000"), "the running call finished on its container")
        await eventually("run() returned once the busy container ended too", within: 10) { returned.hasFired }
        #expect(driver.live.isEmpty, "every container was closed")
        #expect(agent.tracker.utilization.memoryUsedBytes == 0, "every token was released")
        await agent.shutdown()
    }

    @Test(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
    func aCancelledRunStopsAStartStillWaitingForTheListenerInsteadOfWaitingItOut() async throws {
        let layout = try await ImageFixtures.helloStreamLayout()
        try await RunnerHarness.withImageStore("cancel", images: [(layout, "fn-test/hello-stream:1")]) { sandbox, store, env in
            var config = AgentConfiguration()
            config.hotStartTimeoutMillis = 60_000
            let agent = Agent(
                configuration: config, driver: RunnerHarness.driver(sandbox, store, env),
                tracker: ResourceTracker(totalMemoryBytes: 1 << 30, totalCPUMillicores: 2000))
            let (run, returned) = Self.run(agent)
            defer { run.cancel() }
            // hello-stream listens only after this delay: the start waits for its socket.
            let late = FunctionDefinition(
                appID: "app1", appName: "myapp", fnID: "late", fnName: "late", image: "fn-test/hello-stream:1",
                fnConfig: ["HELLO_LISTEN_DELAY_MS": "40000"])
            let call = Task { try await agent.submit(late, RunnerHarness.request("x")) }
            defer { call.cancel() }
            await eventually("the container started") { sandbox.liveContainers.count == 1 }

            run.cancel()
            await eventually("run() returned long before the function listens", within: 10) { returned.hasFired }
            #expect(sandbox.liveContainers.isEmpty, "the start was ended with its container")
            await #expect(throws: RunnerError.self, "the call that waited for it got the start's error") { try await call.value }
            await agent.shutdown()
            #expect(agent.tracker.utilization.memoryUsedBytes == 0, "every token was released")
        }
    }
}
