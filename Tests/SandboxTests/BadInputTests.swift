import RunnerOS
import Sandbox
import TestSupport
import Testing

@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct BadInputTests {
    /// Starts `spec`, expects a RunnerError, and checks that no cgroup was left behind.
    func expectRejected(
        _ spec: ContainerSpec, code: RunnerError.Code, step: String? = nil, mentioning words: [String] = []
    ) async throws {
        try await withSandbox("bad") { sandbox, env in
            let before = await env.settledCgroupDirectories(sandbox)
            let error = #expect(throws: RunnerError.self) { _ = try sandbox.start(spec) }
            #expect(error?.code == code, "\(String(describing: error))")
            if let step { #expect(error?.step == step, "\(String(describing: error))") }
            for w in words { #expect(error?.description.contains(w) == true, "\(String(describing: error)) lacks \(w)") }
            #expect(await env.settledCgroupDirectories(sandbox) == before)
            #expect(sandbox.liveContainers.isEmpty)
        }
    }

    @Test func aMissingRootfsIsNotFound() async throws {
        try await expectRejected(
            ContainerSpec(layers: ["/nonexistent/rootfs"], argv: ["/bin/true"]), code: .notFound,
            mentioning: ["/nonexistent/rootfs"])
    }

    @Test func aRelativeRootfsIsInvalid() async throws {
        try await expectRejected(ContainerSpec(layers: ["rootfs"], argv: ["/bin/true"]), code: .invalidArgument)
    }

    @Test func aMissingExecutableNamesItAndTheExecveStep() async throws {
        try await expectRejected(try await busyboxSpec(["/bin/no-such-program"]), code: .notFound, step: "execve", mentioning: ["/bin/no-such-program"])
        try await expectRejected(try await busyboxSpec(["no-such-program"]), code: .notFound, step: "execve")
    }

    @Test func aNonExecutableFileOrADirectoryIsRefused() async throws {
        try await expectRejected(try await busyboxSpec(["/etc/not-executable"]), code: .containerStart, step: "execve", mentioning: ["EACCES"])
        try await expectRejected(try await busyboxSpec(["/etc"]), code: .containerStart, step: "execve")
    }

    @Test func anEmptyCommandIsInvalid() async throws {
        try await expectRejected(try await busyboxSpec([]), code: .invalidArgument)
        try await expectRejected(try await busyboxSpec([""]), code: .invalidArgument)
    }

    @Test func aReservedUIDIsInvalid() async throws {
        var spec = try await busyboxSpec(["/bin/true"])
        spec.uid = UInt32.max
        try await expectRejected(spec, code: .invalidArgument, mentioning: ["uid"])
    }

    @Test func limitsOutOfRangeAreInvalid() async throws {
        for limits in [
            ResourceLimitsCase.memory(1 << 20), .cpu(0), .cpu(1_000_000), .pids(0),
        ] {
            var spec = try await busyboxSpec(["/bin/true"])
            limits.apply(&spec)
            try await expectRejected(spec, code: .invalidArgument, step: "validate limits")
        }
    }

    @Test func aMissingWorkingDirectoryNamesTheChdirStep() async throws {
        var spec = try await busyboxSpec(["/bin/true"])
        spec.workingDirectory = "/no/such/dir"
        try await expectRejected(spec, code: .containerStart, step: "chdir to working directory", mentioning: ["/no/such/dir", "ENOENT"])
    }

    @Test func aBindTargetMissingFromTheReadOnlyRootfsFailsAtTheBindStep() async throws {
        var spec = try await busyboxSpec(["/bin/true"])
        spec.bindMounts = [.init(source: "/tmp", target: "/no-such-target")]
        try await expectRejected(spec, code: .containerStart, step: "bind mounts")
    }

    @Test func badEnvironmentEntriesAndUnknownCapabilitiesAreInvalid() async throws {
        var spec = try await busyboxSpec(["/bin/true"])
        spec.env = ["NOEQUALS"]
        try await expectRejected(spec, code: .invalidArgument, mentioning: ["NOEQUALS"])
        spec.env = []
        spec.capabilities = ["CAP_MAKE_COFFEE"]
        try await expectRejected(spec, code: .invalidArgument, mentioning: ["CAP_MAKE_COFFEE"])
    }
}

enum ResourceLimitsCase {
    case memory(UInt64), cpu(Int), pids(Int)
    func apply(_ spec: inout ContainerSpec) {
        switch self {
        case .memory(let b): spec.limits.memoryBytes = b
        case .cpu(let m): spec.limits.cpuMillicores = m
        case .pids(let p): spec.limits.pids = p
        }
    }
}
