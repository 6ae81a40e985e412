import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The static http-stream test function in a real sandbox, reached from the host through the
/// bind-mounted iofs directory, as the agent will reach hot functions.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"))
struct HTTPStreamFunctionTests {
    @Test func aHotFunctionAnswersOnItsSocketAndServesARequestQueuedWhileFrozen() async throws {
        try await withSandbox("hs") { sandbox, env in
            let iofs = env.stateDirectory + "-iofs"
            try FileSystem.makeDirectories(iofs)
            defer { try? FileSystem.removeTree(iofs) }
            var spec = try await busyboxSpec(["/bin/hello-stream"])
            spec.env = ["FN_FORMAT=http-stream", "FN_LISTENER=unix:/tmp/iofs/lsnr.sock"]
            spec.bindMounts = [.init(source: iofs, target: "/tmp/iofs")]
            chown(iofs, spec.uid, spec.gid)
            let c = try sandbox.start(spec)
            try await waitUntil { FileSystem.exists(iofs + "/lsnr.sock") }
            let call = "curl -s --max-time 5 --unix-socket \(iofs)/lsnr.sock"
            #expect(try await Shell.output("\(call) -d World http://localhost/call") == "Hello World")
            #expect(try await Shell.output("\(call) -d '!env FN_FORMAT' http://localhost/call") == "http-stream")

            try c.freeze()
            let pending = try Subprocess(["/usr/bin/curl", "-s", "--max-time", "5", "--unix-socket", iofs + "/lsnr.sock", "-d", "Frozen", "http://localhost/call"])
            try await Task.sleep(for: .milliseconds(200))
            #expect(kill(pending.pid, 0) == 0, "the call waits while the function is frozen")
            try c.thaw()
            #expect(await pending.exit() == 0)
            #expect(pending.stdout == "Hello Frozen")
            try await c.close()
        }
    }
}
