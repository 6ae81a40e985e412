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

/// Hot containers on the real runtime: launched from the image store, called, frozen, thawed.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"))
struct HotContainerTests {
    func function(_ image: String) -> FunctionDefinition {
        FunctionDefinition(appID: "app1", appName: "myapp", fnID: "fn1", fnName: "myfn", image: image, fnConfig: ["GREETING": "hi"])
    }

    func request(_ body: String) -> FunctionRequest { RunnerHarness.request(body) }

    /// Launches `image` (imported from `layout`) as a hot container named `name`.
    func withHotContainer(
        _ layout: String, _ image: String, name: String, _ body: (HotContainer, Sandbox) async throws -> Void
    ) async throws {
        try await RunnerHarness.withImageStore("hot", images: [(layout, image)]) { sandbox, store, env in
            let handle = try await RunnerHarness.driver(sandbox, store, env).startHot(RunnerHarness.task(function(image), name: name))
            let hot = try #require(handle as? HotContainer)
            try await body(hot, sandbox)
        }
    }

    @Test func aHotContainerServesManyCallsFrozenBetweenThem() async throws {
        try await withHotContainer(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:1", name: "hot1") { hot, _ in
            for i in 0..<20 {
                let r = try await hot.call(request("call\(i)"), timeout: .seconds(5), maxBodyBytes: 0, log: CallLog())
                #expect(String(decoding: r.body, as: UTF8.self) == "Hello call\(i)")
                try hot.freeze()
                #expect(try hot.container.freezerState() == .frozen)
            }
            #expect(String(decoding: try await hot.call(request("!env GREETING"), timeout: .seconds(5), maxBodyBytes: 0, log: CallLog()).body, as: UTF8.self) == "hi")
            #expect(!hot.isFrozen)
            await hot.close()
        }
    }

    @Test func theRealPythonFDKServesFiftyCallsOnOneHotContainerFrozenBetweenCalls() async throws {
        try await withHotContainer(try await FDKImage.layout(), "fn-test/pyfdk:pyfdk", name: "py1") { hot, _ in
            let pid = hot.container.pid
            for i in 0..<50 {
                let r = try await hot.call(request("caller \(i)"), timeout: .seconds(10), maxBodyBytes: 0, log: CallLog())
                #expect(r.status == 200)
                #expect(String(decoding: r.body, as: UTF8.self) == "Hello caller \(i)")
                #expect(r.header("fn-fdk-version")?.hasPrefix("fdk-python/") == true)
                try hot.freeze()
            }
            #expect(hot.container.pid == pid && hot.container.exit == nil, "one container served every call")
            await hot.close()
        }
    }

    @Test func aTimedOutCallLeavesTheContainerUnusable() async throws {
        try await withHotContainer(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:1", name: "hot2") { hot, _ in
            let timeout = await #expect(throws: RunnerError.self) { _ = try await hot.call(request("!sleep 3000"), timeout: .milliseconds(100), maxBodyBytes: 0, log: CallLog()) }
            #expect(timeout?.code == .timeout)
            let after = await #expect(throws: RunnerError.self) { _ = try await hot.call(request("again"), timeout: .seconds(1), maxBodyBytes: 0, log: CallLog()) }
            #expect(after?.code == .invalidState)
            await hot.close()
        }
    }

    @Test func aFunctionThatExitsBeforeListeningIsAClearErrorAndLeavesNothing() async throws {
        let layout = try await ImageFixtures.helloStreamLayout()
        try await RunnerHarness.withImageStore("hot", images: [(layout, "fn-test/hello-stream:false")]) { sandbox, store, env in
            let driver = RunnerHarness.driver(sandbox, store, env)
            let error = await #expect(throws: RunnerError.self) {
                _ = try await driver.startHot(RunnerHarness.task(function("fn-test/hello-stream:false"), name: "bad"))
            }
            #expect(error?.code == .containerInit, "\(String(describing: error))")
            #expect(error?.message.contains("exited before it listened") == true)
            #expect(sandbox.liveContainers.isEmpty)
        }
    }

    /// This process's descriptors on the counter files of `sandbox`'s cgroups (those a hot
    /// container keeps open to read its stats; the pool's refill opens others for a moment).
    func cgroupDescriptors(of sandbox: Sandbox) -> [String] {
        let counters = ["cpu.stat", "cpuacct.usage", "memory.current", "memory.peak", "memory.max_usage_in_bytes"]
        return Host.descriptorTargets().filter { target in
            target.hasPrefix("/sys/fs/cgroup") && target.contains(sandbox.instanceID) && counters.contains { target.hasSuffix("/" + $0) }
        }
    }

    @Test func anEndedHotContainerClosesItsDescriptorsAndIsReleasedWithAllItHeld() async throws {
        let layout = try await ImageFixtures.helloStreamLayout()
        try await RunnerHarness.withImageStore("release", images: [(layout, "fn-test/hello-stream:1")]) { sandbox, store, env in
            let driver = RunnerHarness.driver(sandbox, store, env)
            weak var released: HotContainer?
            weak var container: Container?
            for i in 0..<20 {
                let handle = try await driver.startHot(RunnerHarness.task(function("fn-test/hello-stream:1"), name: "release\(i)"))
                let hot = try #require(handle as? HotContainer)
                _ = try await hot.call(request("once"), timeout: .seconds(5), maxBodyBytes: 0, log: CallLog())
                #expect(hot.stats() != nil)
                try hot.freeze()
                #expect(!cgroupDescriptors(of: sandbox).isEmpty, "the counters are read through kept descriptors")
                await hot.close()
                #expect(cgroupDescriptors(of: sandbox).isEmpty, "closed with the container: \(cgroupDescriptors(of: sandbox))")
                released = hot
                container = hot.container
            }
            // The reaper thread lets go of the container just after it reports the exit.
            for _ in 0..<200 where released != nil || container != nil { try await Task.sleep(for: .milliseconds(5)) }
            #expect(released == nil, "nothing keeps an ended hot container alive")
            #expect(container == nil, "nor its container")
        }
    }
}
