import Freezer
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root and a cgroup freezer"))
struct FreezeTests {
    private func lastCount(_ text: String) -> Int { Int(text.split(separator: "\n").last ?? "") ?? -1 }

    @Test func aCounterStopsWhileFrozenAndContinuesAfterThaw() async throws {
        try await withSandbox { sandbox, _ in
            let out = try OutputPipe()
            var spec = try await busyboxSpec(["/bin/probe", "counter"])
            spec.stdout = out.writeFD
            let c = try sandbox.start(spec)
            out.closeWriteEnd()
            try await Task.sleep(nanoseconds: 150_000_000)
            let before = lastCount(out.drain())
            #expect(before > 0)

            let frozen = try c.freeze()
            #expect(frozen.latencyNanos > 0)
            #expect(try c.freezerState() == .frozen)
            let atFreeze = lastCount(out.drain())
            try await Task.sleep(nanoseconds: 400_000_000)
            #expect(lastCount(out.drain()) == atFreeze, "the counter advanced while frozen")

            try c.thaw()
            #expect(try c.freezerState() == .thawed)
            try await Task.sleep(nanoseconds: 200_000_000)
            #expect(lastCount(out.drain()) > atFreeze + 3)
            try await c.close()
            #expect(c.exit?.process == .signaled(SIGKILL))
        }
    }

    @Test func aFrozenContainerCanBeClosed() async throws {
        try await withSandbox { sandbox, _ in
            let c = try sandbox.start(try await busyboxSpec(["/bin/sleep", "60"]))
            try c.freeze()
            try await c.close()
            #expect(c.exit?.process == .signaled(SIGKILL))
            #expect(sandbox.liveContainers.isEmpty)
        }
    }
}
