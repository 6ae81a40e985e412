import RunnerOS
import Sandbox
import TestSupport
import Testing

@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct IsolationTests {
    @Test func theCommandIsPID2UnderInitAndSeesNoHostProcess() async throws {
        try await withSandbox { sandbox, _ in
            let r = try await runToCompletion(
                sandbox, try await busyboxSpec(["/bin/sh", "-c", "echo $$; cat /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'"]))
            let lines = r.stdout.split(separator: "\n")
            #expect(lines.first == "2")
            #expect(lines.dropFirst().first?.hasPrefix("fnrunner-init") == true, "PID 1: \(r.stdout)")
            #expect((Int(lines.last ?? "") ?? 99) <= 4, "processes visible: \(r.stdout)")
            #expect(r.exit.process == .exited(0))
        }
    }

    @Test func theHostnameIsTheContainers() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(["/bin/hostname"])
            spec.hostname = "fn-under-test"
            #expect(try await runToCompletion(sandbox, spec).stdout == "fn-under-test\n")
        }
    }

    @Test func procSysIsReadOnlyAndSensitivePathsAreMasked() async throws {
        try await withSandbox { sandbox, _ in
            let script = """
                echo 1 > /proc/sys/kernel/ns_last_pid && echo sys-writable
                grep -E ' /proc/sys ' /proc/self/mountinfo | grep -q ' ro,' && echo sys-ro
                wc -c < /proc/timer_list
                ls /proc/acpi | wc -l
                """
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/sh", "-c", script], asRoot: true))
            #expect(!r.stdout.contains("sys-writable"))
            #expect(r.stdout.contains("sys-ro"))
            let numbers = r.stdout.split(separator: "\n").compactMap { Int($0.trimmed) }
            #expect(numbers == [0, 0], "timer_list bytes, acpi entries: \(r.stdout)")
        }
    }

    @Test func evenUID0HasNoCapabilitiesAndNoNewPrivileges() async throws {
        try await withSandbox { sandbox, _ in
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/grep", "-E", "^(Cap|NoNewPrivs|Seccomp:)", "/proc/self/status"], asRoot: true))
            for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
                #expect(r.stdout.contains("\(field):\t0000000000000000"), "\(r.stdout)")
            }
            #expect(r.stdout.contains("NoNewPrivs:\t1"))
            #expect(r.stdout.contains("Seccomp:\t2"))
        }
    }

    @Test func writingTheRootfsFailsEvenForUID0() async throws {
        try await withSandbox { sandbox, _ in
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/touch", "/bin/new-file"], asRoot: true))
            #expect(r.exit.process == .exited(1))
            #expect(r.stderr.contains("Read-only file system"))
            #expect(!FileSystem.exists(try await Fixtures.busybox() + "/bin/new-file"))
        }
    }

    @Test func mountPtraceUnshareKeyctlAndNamespaceClonesAreRefused() async throws {
        try await withSandbox { sandbox, _ in
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/probe", "syscalls"], asRoot: true))
            for call in ["mount", "ptrace", "unshare", "keyctl", "clone_newns"] {
                #expect(r.stdout.contains("\(call)=EPERM"), "\(call): \(r.stdout)")
            }
            #expect(r.stdout.contains("getpid=2"))
        }
    }

    @Test func everyCallTheProfileDeniesIsRefusedWithEPERMAndTheArgumentRulesHold() async throws {
        try await withSandbox { sandbox, _ in
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/probe", "denied"], asRoot: true))
            #expect(r.exit.process == .exited(0), "\(r.stderr)")
            var seen: [String: String] = [:]
            for line in r.stdout.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
                if kv.count == 2 { seen[kv[0]] = kv[1] }
            }
            for name in SeccompProfile.deniedSyscalls {
                #expect(seen[name] == "EPERM" || seen[name] == "n/a", "\(name): \(seen[name] ?? "not tried")")
            }
            // vsock (even with junk above the 32 bits the kernel reads) and AF_ALG are refused;
            // AF_UNIX is not.
            #expect(seen["socket_vsock"] == "EPERM" && seen["socket_vsock_high_bits"] == "EPERM" && seen["socket_alg"] == "EPERM")
            #expect(seen["socket_unix"] == "ok")
            #expect(seen["personality_read_implies_exec"] == "EPERM" && seen["personality_addr_no_randomize"] == "EPERM")
            for allowed in ["personality_query", "personality_linux32_uname26", "personality_linux"] {
                #expect(seen[allowed] == "ok", "\(allowed): \(seen[allowed] ?? "not tried")")
            }
            #expect(seen["clone3"] == "ENOSYS" && seen["unreviewed_600"] == "ENOSYS")
        }
    }

    @Test func networkNoneHasOnlyLoopbackAndItIsUp() async throws {
        try await withSandbox { sandbox, _ in
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/sh", "-c", "cat /proc/net/dev; echo ---; ip link show lo"]))
            let parts = r.stdout.split(separator: "---\n", omittingEmptySubsequences: false).map(String.init)
            let interfaces = parts[0].split(separator: "\n").compactMap { line -> String? in
                let fields = line.split(separator: ":")
                return fields.count > 1 && !line.contains("|") ? fields[0].trimmed : nil
            }
            #expect(interfaces == ["lo"], "\(r.stdout)")
            #expect(parts.count == 2 && parts[1].contains(",UP"), "\(r.stdout)")
        }
    }

    @Test func networkHostSharesTheHostsInterfaces() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(["/bin/cat", "/proc/net/dev"])
            spec.network = .host
            let inside = try await runToCompletion(sandbox, spec).stdout
            let host = try FileSystem.read("/proc/net/dev")
            #expect(inside.split(separator: "\n").count == host.split(separator: "\n").count)
        }
    }

    @Test func userEnvironmentWorkdirAndRlimitsAreApplied() async throws {
        try await withSandbox { sandbox, _ in
            var spec = try await busyboxSpec(["/bin/sh", "-c", "id -u; id -g; echo $GREETING; pwd; ulimit -n; umask"])
            spec.uid = 4242
            spec.gid = 4343
            spec.env = ["GREETING=hello"]
            spec.workingDirectory = "/tmp"
            let r = try await runToCompletion(sandbox, spec)
            #expect(r.stdout == "4242\n4343\nhello\n/tmp\n350\n0022\n", "\(r.stdout) \(r.stderr)")
        }
    }

    @Test func tmpIsAWritableTmpfsWithNosuidNodevNoexec() async throws {
        try await withSandbox { sandbox, _ in
            let script = "echo data > /tmp/f && cat /tmp/f; grep ' /tmp ' /proc/self/mountinfo"
            let r = try await runToCompletion(sandbox, try await busyboxSpec(["/bin/sh", "-c", script]))
            #expect(r.stdout.hasPrefix("data\n"))
            for flag in ["nosuid", "nodev", "noexec"] { #expect(r.stdout.contains(flag)) }
        }
    }

    @Test func aRootfsWithoutMountPointsGetsTheSkeletonOverlay() async throws {
        try await withSandbox { sandbox, _ in
            let spec = ContainerSpec(layers: [try await Fixtures.busyboxWithoutMountPoints()], argv: ["/bin/sh", "-c", "ls /proc/self/ns | wc -l; echo ok > /tmp/x && cat /tmp/x"])
            let r = try await runToCompletion(sandbox, spec)
            #expect(r.exit.process == .exited(0), "\(r.stderr)")
            #expect(r.stdout.hasSuffix("ok\n"))
        }
    }

    @Test func aRootfsWhoseProcIsASymlinkStillGetsAMaskedReadOnlyProc() async throws {
        try await withSandbox { sandbox, env in
            // /proc -> realproc: mounting through it would put an unmasked /proc at /realproc.
            let rootfs = env.stateDirectory + "-symproc"
            try await Shell.run("cp -a \(try await Fixtures.busyboxWithoutMountPoints()) \(rootfs) && mkdir \(rootfs)/realproc \(rootfs)/dev \(rootfs)/sys \(rootfs)/tmp && ln -s realproc \(rootfs)/proc")
            defer { try? FileSystem.removeTree(rootfs) }
            var spec = ContainerSpec(layers: [rootfs], argv: ["/bin/sh", "-c", "ls /realproc | wc -l; grep ' /proc/sys ' /proc/self/mountinfo | grep -c ' ro,'; wc -c < /proc/timer_list"])
            spec.uid = 0
            spec.gid = 0
            let r = try await runToCompletion(sandbox, spec)
            #expect(r.stdout == "0\n1\n0\n", "\(r.stdout) \(r.stderr)")
        }
    }

    @Test func layersStackTopFirstReadOnly() async throws {
        try await withSandbox { sandbox, env in
            let top = env.stateDirectory + "-layer"
            try FileSystem.makeDirectories(top + "/etc")
            defer { try? FileSystem.removeTree(top) }
            try FileSystem.create(top + "/etc/greeting", contents: "from the top layer\n")
            let spec = ContainerSpec(layers: [top, try await Fixtures.busybox()], argv: ["/bin/sh", "-c", "cat /etc/greeting; touch /etc/x || echo refused"])
            var s = spec
            s.uid = 0
            s.gid = 0
            let r = try await runToCompletion(sandbox, s)
            #expect(r.stdout == "from the top layer\nrefused\n", "\(r.stdout) \(r.stderr)")
        }
    }

    @Test func aBindMountUnderTmpIsWritableAndSharedWithTheHost() async throws {
        try await withSandbox { sandbox, env in
            let shared = env.stateDirectory + "-iofs"
            try FileSystem.makeDirectories(shared)
            defer { try? FileSystem.removeTree(shared) }
            var spec = try await busyboxSpec(["/bin/sh", "-c", "echo from-inside > /tmp/iofs/file"], asRoot: true)
            spec.bindMounts = [.init(source: shared, target: "/tmp/iofs")]
            let r = try await runToCompletion(sandbox, spec)
            #expect(r.exit.process == .exited(0), "\(r.stderr)")
            #expect(try FileSystem.read(shared + "/file") == "from-inside\n")
        }
    }
}
