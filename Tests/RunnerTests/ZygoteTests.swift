import Foundation
import NativeRuntime
import OCIImage
import Runner
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `fnrunner.io/zygote: python` with the real Python FDK: instances forked from a template
/// that has imported the FDK and the function, each in cgroups of its own.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"), .serialized)
struct ZygoteTests {
    static let annotation = [FunctionDefinition.zygoteAnnotation: "\"python\""]

    func function(_ tag: String, timeout: Int = 10, memoryMB: UInt64 = 128, idle: Int = 30, config: [String: String] = [:])
        -> FunctionDefinition
    {
        FunctionDefinition(
            appID: "app1", appName: "myapp", fnID: "fn-zygote-\(tag)", fnName: tag, image: "fn-test/pyfdk:\(tag)", memoryMB: memoryMB,
            timeoutSeconds: timeout, idleTimeoutSeconds: idle, fnConfig: config, annotations: Self.annotation)
    }

    func request(_ body: String) -> FunctionRequest { RunnerHarness.request(body) }

    func withAgent(_ body: (Agent, NativeDriver, Sandbox) async throws -> Void) async throws {
        let layout = try await FDKImage.layout()
        let tags = ["pyfdk-rand", "pyfdk-boom", "pyfdk-slow", "pyfdk-hog", "pyfdk-hostile"]
        var images = tags.map { (layout, "fn-test/pyfdk:\($0)") }
        images.append((try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:1"))
        // A fork that never answers is given up on at the start timeout, and the normal start
        // behind it has a start timeout of its own. 8 s: a normal Python start took over 3 s
        // in a full run under two CPU hogs. A call's wait for an instance is limited by its
        // timeout (10 s) unless FN_MAX_WAIT_MSECS is set: set, because at the start of a full
        // run, with every suite building its fixtures at once, CI saw a template's first start
        // outlast a call's 10 s and the call refused as busy.
        let configure: (inout AgentConfiguration) -> Void = {
            $0.hotStartTimeoutMillis = 8000
            $0.maxWaitMillis = 60_000
        }
        try await RunnerHarness.withAgent("zygote", images: images, configure: configure) { agent, sandbox in
            try await body(agent, try #require(agent.driver as? NativeDriver), sandbox)
        }
    }

    struct Instance: Decodable, Hashable {
        var random: UInt64
        var uuid: String
        var pid: Int32
    }

    func instance(_ r: FunctionResponse) throws -> Instance {
        try JSONDecoder().decode(Instance.self, from: Data(r.body))
    }

    @Test func instancesAreForksOfOneTemplateEachWithItsOwnRandomStateCgroupAndListener() async throws {
        try await withAgent { agent, driver, sandbox in
            let f = function("pyfdk-rand", timeout: 30)
            let first = try instance(try await agent.submit(f, request("0")))
            let templates = driver.zygoteTemplatePIDs
            #expect(templates.count == 1, "one template for the function")
            // Three calls at once, each sleeping eight seconds: the hot instance takes one, and two
            // more instances are forked (one of them parked ahead by the first start). Until the
            // hot instance is free again the third call still needs one. With three seconds, a
            // fork that took longer to start under two CPU hogs lost the third call to the freed
            // instance, as Fn's rules say it should.
            let answers = try await withThrowingTaskGroup(of: Instance.self) { group in
                for _ in 0..<3 { group.addTask { try self.instance(try await agent.submit(f, self.request("8"))) } }
                return try await group.reduce(into: [Instance]()) { $0.append($1) }
            }
            let all = answers + [first]
            #expect(Set(all.map(\.random)).count == all.count, "each instance re-seeded random: \(all.map(\.random))")
            #expect(Set(all.map(\.uuid)).count == all.count)
            #expect(Set(answers.map(\.pid)).count == 3, "three instances served the three calls")
            let paths = try #require(driver.startPaths)
            #expect(paths.forked >= 3 && paths.zygoteFallbacks == 0, "\(paths)")
            // Every instance is a child of the template's Python (itself a child of the
            // template's init), in a cgroup of its own.
            let template = try #require(templates.first)
            let instances = sandbox.liveContainers.filter { !templates.contains($0.pid) }
            #expect(instances.count >= 3)
            for c in instances {
                let python = try #require(ProcessDescriptor.parent(of: c.pid))
                #expect(ProcessDescriptor.parent(of: python) == template, "instance \(c.pid) is a fork of the template")
                #expect(c.cgroup != sandbox.liveContainers.first { $0.pid == template }?.cgroup)
            }
            #expect(driver.zygoteTemplatePIDs == templates, "the template lives on, frozen between forks")
        }
    }

    @Test func aForkedInstanceAnswersErrorsAndTimeoutsAsAnyFDKContainer() async throws {
        try await withAgent { agent, driver, _ in
            let boom = await RunnerHarness.failure(agent, function("pyfdk-boom"), request(""))
            #expect(boom?.code == .functionFailed, "\(String(describing: boom))")
            // The wait for an instance is FN_MAX_WAIT_MSECS's, so a fork slow to start on a
            // loaded node still reaches the 1 s call whose timeout this is about.
            let slowFn = function("pyfdk-slow", timeout: 1)
            _ = try await agent.submit(slowFn, request("0"))
            let slow = await RunnerHarness.failure(agent, slowFn, request("5"))
            #expect(slow?.code == .callTimeout, "\(String(describing: slow))")
            let paths = try #require(driver.startPaths)
            #expect(paths.forked >= 2 && paths.zygoteFallbacks == 0, "\(paths)")
        }
    }

    @Test func anInstanceKilledForItsMemoryLimitIsOutOfMemoryAndTheTemplateLivesOn() async throws {
        try await withAgent { agent, driver, _ in
            let f = function("pyfdk-hog", memoryMB: 64)
            let oom = await RunnerHarness.failure(agent, f, request("256"))
            #expect(oom?.code == .outOfMemory, "\(String(describing: oom))")
            let template = try #require(driver.zygoteTemplatePIDs.first)
            #expect(Host.isRunning(template), "the template survived its instance's OOM kill")
            let small = try await agent.submit(f, request("4"))
            #expect(RunnerHarness.text(small) == "held 4 MiB")
            #expect(driver.zygoteTemplatePIDs == [template], "the next instance came from the same template")
            #expect(try #require(driver.startPaths).zygoteFallbacks == 0)
        }
    }

    @Test func aTemplateThatEndsMakesStartsFallBackToNormalContainersAndCountsThem() async throws {
        try await withAgent { agent, driver, sandbox in
            let f = function("pyfdk-rand", idle: 1)
            _ = try await agent.submit(f, request("0"))
            let template = try #require(driver.zygoteTemplatePIDs.first)
            // Once the idle instance has ended, only the template (and its parked fork) is left.
            // The agent's view first: under load the parked fork may not be there yet, and a count
            // of two would then still include the idle instance.
            await eventually("the idle instance ended") { agent.containers.isEmpty && sandbox.liveContainers.count <= 2 }
            #expect(kill(template, SIGKILL) == 0)
            await eventually("the template's end was seen") { driver.zygoteTemplatePIDs.isEmpty }
            let answer = try instance(try await agent.submit(f, request("0")))
            #expect(answer.pid > 0)
            let paths = try #require(driver.startPaths)
            #expect(paths.zygoteFallbacks == 1, "\(paths)")
            #expect(PrometheusText.count(of: "fn_zygote_fallbacks_total", in: agent.prometheusText()) == 1)
            #expect(driver.zygoteTemplatePIDs.isEmpty, "no new template within the retry delay")
        }
    }

    /// Instances live in their template's pid namespace, so a template killed under an idle
    /// instance takes the instance with it. The agent must learn that from the instance's own
    /// end, not from the next call failing on it.
    @Test func anIdleInstanceThatDiedWithItsTemplateIsDroppedAndTheNextCallIsServed() async throws {
        try await withAgent { agent, driver, _ in
            let f = function("pyfdk-rand")
            let first = try instance(try await agent.submit(f, request("0")))
            #expect(agent.containers.count == 1, "the instance idles")
            let template = try #require(driver.zygoteTemplatePIDs.first)
            #expect(kill(template, SIGKILL) == 0)
            await eventually("the agent dropped the dead instance") { agent.containers.isEmpty }
            let next = try await agent.submit(f, request("0"))
            #expect(next.status == 200, "\(next.status) \(String(decoding: next.body, as: UTF8.self))")
            #expect(try instance(next).pid != first.pid)
        }
    }

    @Test func aChangedFunctionGetsANewTemplateAndTheOldOneEndsWithItsLastInstance() async throws {
        try await withAgent { agent, driver, _ in
            _ = try await agent.submit(function("pyfdk-rand", idle: 1, config: ["V": "1"]), request("0"))
            let old = try #require(driver.zygoteTemplatePIDs.first)
            _ = try await agent.submit(function("pyfdk-rand", config: ["V": "2"]), request("0"))
            let now = driver.zygoteTemplatePIDs
            #expect(now.count == 1 && now.first != old, "the changed definition has a template of its own")
            await eventually("the old template ended after its idle instance") { !Host.isRunning(old) }
        }
    }

    @Test func aSavedFunctionKeepsItsTemplateAndADeletedOnesEndsWithItsLastInstance() async throws {
        try await withAgent { agent, driver, _ in
            let f = function("pyfdk-rand", idle: 1)
            _ = try await agent.submit(f, request("0"))
            let template = try #require(driver.zygoteTemplatePIDs.first)
            agent.functionSaved(f)
            #expect(driver.zygoteTemplatePIDs == [template], "saved unchanged: the template stays")
            agent.functionDeleted(fnID: f.fnID)
            #expect(driver.zygoteTemplatePIDs.isEmpty, "no start finds it any more")
            await eventually("the template ended after its idle instance") { !Host.isRunning(template) }
        }
    }

    @Test(arguments: ["init", "self", "junk", "silent"])
    func aTemplateThatAnswersAForkFalselyIsEndedAndTheCallServedByANormalStart(_ mode: String) async throws {
        try await withAgent { agent, driver, sandbox in
            // A silent fork takes the whole start timeout, then the normal start its own: the
            // call may wait for both.
            let f = function("pyfdk-hostile", timeout: 20, config: ["FNRUNNER_TEST_HOSTILE": mode])
            let r = try await agent.submit(f, request(""))
            #expect(RunnerHarness.text(r) == "still served (\(mode))")
            #expect(try #require(driver.startPaths).zygoteFallbacks == 1)
            // The template is gone, with whatever it forked; the normal container serves on.
            await eventually("only the call's own container is left") { sandbox.liveContainers.count == 1 }
            #expect(driver.zygoteTemplatePIDs.isEmpty)
            let again = try await agent.submit(f, request(""))
            #expect(RunnerHarness.text(again) == "still served (\(mode))")
        }
    }

    @Test func forksThatDieBeforeTheyListenFallBackAndThreeInARowEndTheTemplate() async throws {
        try await withAgent { agent, driver, _ in
            let f = function("pyfdk-hostile", config: ["FNRUNNER_TEST_HOSTILE": "crash"])
            let first = try await agent.submit(f, request(""))
            #expect(RunnerHarness.text(first) == "still served (crash)", "the call was served by a normal start")
            #expect(try #require(driver.startPaths).zygoteFallbacks == 1)
            #expect(driver.zygoteTemplatePIDs.count == 1, "one failed fork does not end the template")
            // Two more calls at once, each sleeping, need two more instances: both forks die too.
            let texts = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<3 { group.addTask { RunnerHarness.text(try await agent.submit(f, self.request("1"))) } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(texts == Array(repeating: "still served (crash)", count: 3))
            #expect(driver.zygoteTemplatePIDs.isEmpty, "three failed forks in a row ended the template")
            #expect(try #require(driver.startPaths).forked == 0)
        }
    }

    @Test func anImageWhoseEntrypointIsNotAPythonScriptFallsBackToANormalStart() async throws {
        try await withAgent { agent, driver, _ in
            let f = FunctionDefinition(
                appID: "app1", appName: "myapp", fnID: "fn-zygote-c", fnName: "c", image: "fn-test/hello-stream:1",
                annotations: Self.annotation)
            let r = try await agent.submit(f, request("World"))
            #expect(r.status == 200)
            let paths = try #require(driver.startPaths)
            #expect(paths.zygoteFallbacks == 1 && paths.forked == 0, "\(paths)")
            #expect(driver.zygoteTemplatePIDs.isEmpty)
        }
    }

    /// A start cancelled on its way (its launch stopped, the node stopping) is not the
    /// template's failure: it does not fall back to a normal container, count against the
    /// template, or leave an instance behind, and the next start forks from the same template.
    @Test func aCancelledStartNeitherFallsBackNorCountsAgainstTheTemplate() async throws {
        try await withAgent { agent, driver, sandbox in
            let f = function("pyfdk-rand")
            _ = try await agent.submit(f, request("0"))
            let template = try #require(driver.zygoteTemplatePIDs.first)
            var cancelled = 0
            for round in 0..<4 {
                let task = RunnerHarness.task(f, name: "cancelled-\(round)")
                let start = Task {
                    withUnsafeCurrentTask { $0?.cancel() }
                    return try await driver.startHot(task)
                }
                switch await start.result {
                case .success(let hot):
                    await hot.close()  // ready before it looked at its cancellation
                case .failure(let error):
                    let code = (error as? RunnerError)?.code
                    #expect(code == .unavailable || code == .callCancelled, "\(error)")
                    cancelled += 1
                }
            }
            // A start whose instance was already listening may finish before it looks.
            #expect(cancelled >= 1, "a start saw its cancellation")
            let paths = try #require(driver.startPaths)
            #expect(paths.zygoteFallbacks == 0, "\(paths)")
            #expect(driver.zygoteTemplatePIDs == [template], "the template lives on")
            let hot = try await driver.startHot(RunnerHarness.task(f, name: "after"))
            await hot.close()
            let after = try #require(driver.startPaths)
            #expect(after.forked == paths.forked + 1 && after.zygoteFallbacks == 0, "the next start forked: \(after)")
            #expect(driver.zygoteTemplatePIDs == [template])
            // Only the template, the instances the agent holds and a parked fork are left.
            await eventually("no instance of a cancelled start is left") {
                sandbox.liveContainers.count <= 1 + agent.containers.count + 1
            }
        }
    }
}
