import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ServeCommandTests {
    /// Open descriptors of a process.
    func descriptorCount(_ pid: Int32) -> Int { ((try? FileSystem.list("/proc/\(pid)/fd")) ?? []).count }

    @Test func threeHundredEndedHotContainersLeaveTheServersDescriptorCountWhereItWas() async throws {
        try await withHelloStreamData("fds") { env, data in
            let port = try freePort()
            let (server, c) = try await startServer(env, data: data, port: port)
            let fnID = try await deploy(c, app: "fds", fn: "crashing", memory: 32)
            // Each call starts a hot container that crashes mid-call and is ended (502).
            func crash() async throws {
                let r = try await c.send("POST", "/invoke/\(fnID)", body: Array("!crash".utf8))
                #expect(r.status == 502, "\(r.text)")
            }
            for _ in 0..<5 { try await crash() }  // shared watchers, pumps and pools are made by now
            try await Task.sleep(for: .milliseconds(200))
            let baseline = descriptorCount(server.pid)
            for _ in 0..<300 { try await crash() }
            // A container's teardown finishes just after its call was answered.
            var now = descriptorCount(server.pid)
            for _ in 0..<100 where now > baseline + 3 {
                try await Task.sleep(for: .milliseconds(50))
                now = descriptorCount(server.pid)
            }
            #expect(now <= baseline + 3, "\(baseline) descriptors before, \(now) after 300 containers")
            server.signal(SIGTERM)
            #expect(await server.exit() == 0, "\(server.stderr)")
        }
    }
}
