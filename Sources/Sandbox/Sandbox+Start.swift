import CRunnerShim
import CgroupDriver
import Freezer
import NodeNetwork
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Sandbox {
    static let maskedPaths = [
        "proc/acpi", "proc/asound", "proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list",
        "proc/timer_stats", "proc/sched_debug", "proc/scsi", "sys/firmware", "sys/devices/virtual/powercap",
    ]
    static let readonlyPaths = ["proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"]
    static let mountPoints = ["proc", "dev", "sys", "tmp"]

    /// Starts a container and returns once its process has exec'd (or throws with the failing step).
    ///
    /// A container with a network namespace of its own starts from the pool when a sandbox for
    /// its network is ready there, else directly; a `bridge` container's direct start makes its
    /// sandbox on the spot (its namespace must be on the bridge before the program runs). On any
    /// failure everything created for it is removed again before the error is thrown.
    public func start(_ spec: ContainerSpec, name: String? = nil) throws(RunnerError) -> Container {
        try spec.validate(hostCPUs: hostCPUs)
        if spec.network == .bridge && functionNetwork == nil {
            throw RunnerError(
                .invalidArgument, "network bridge needs the node's function bridge, and this runner has none configured",
                step: "validate spec")
        }
        let keep = try Capabilities.mask(spec.capabilities)
        let containerName = name ?? nextName()
        let began = MonotonicClock.nowNanos()
        if spec.network == configuration.poolNetwork, let pool, let entry = pool.claim() {
            defer { pool.refill() }
            do {
                let container = try start(spec, name: containerName, prepared: entry, keep: keep, setup: "pool claim", began: began)
                countStart(pooled: true)
                return container
            } catch where error.step == ParkedLauncher.goneStep {
                // Its sandbox was removed like any failed start's (a child it may have begun
                // cloning, killed at shutdown mid-clone, with it).
                logger.warning("a parked launcher was gone; starting directly", metadata: ["cgroup": "\(entry.cgroup)"])
            }
        }
        if spec.network == .bridge {
            let prepared = try PreparedSandbox.make(
                name: containerName, driver: driver, instanceID: instanceID, network: functionNetwork, hostname: nodeHostname)
            let container = try start(spec, name: containerName, prepared: prepared, keep: keep, setup: "sandbox prepare", began: began)
            countStart(pooled: false)
            return container
        }
        let cg = try driver.create(instance: instanceID, container: containerName, limits: spec.limits)
        let container = try start(
            spec, name: containerName, cgroup: cg, keep: keep, launcher: nil, attachment: nil, setup: .ending("cgroup create", from: began))
        countStart(pooled: false)
        return container
    }

    /// Starts the container in a prepared sandbox: only its limits are written here.
    private func start(_ spec: ContainerSpec, name: String, prepared: PreparedSandbox, keep: UInt64, setup: String, began: UInt64)
        throws(RunnerError) -> Container
    {
        do {
            try driver.applyMemoryAndPids(prepared.cgroup, spec.limits)
        } catch {
            prepared.discard(driver: driver, network: functionNetwork)
            throw error
        }
        return try start(
            spec, name: name, cgroup: prepared.cgroup, keep: keep, launcher: prepared.launcher, attachment: prepared.attachment,
            namespace: prepared.namespace, setup: .ending(setup, from: began))
    }

    /// Starts the process in `cg` (through `launcher` when given) and hands the container out.
    private func start(
        _ spec: ContainerSpec, name: String, cgroup cg: CgroupSet, keep: UInt64, launcher: ParkedLauncher?,
        attachment: NetworkAttachment?, namespace: NamespaceHold? = nil, setup: TimedPhase
    ) throws(RunnerError) -> Container {
        do throws(RunnerError) {
            let container = try spawn(
                spec, name: name, cgroup: cg, keepCapabilities: keep, launcher: launcher, attachment: attachment, namespace: namespace,
                setup: setup)
            do throws(RunnerError) {
                try register(container)
                try ProcessReaper.shared.watch(pidfd: container.pidfd) { [container] exit in
                    container.processExited(exit)
                }
            } catch {
                deregister(name)
                container.abandon()
                throw error
            }
            return container
        } catch {
            try? driver.kill(cg)
            try? driver.delete(cg)
            if let attachment { functionNetwork?.detach(attachment) }
            namespace?.release()
            throw error
        }
    }

    /// Which of the image's name files (/etc/resolv.conf, /etc/hosts) a bridge container's
    /// own can be laid over: only regular files, as the merged view of the layers shows them
    /// with no link followed (a bind follows links, and one in an image could point anywhere).
    static func nameFileTargets(_ layers: [String]) -> [String] {
        ["etc/resolv.conf", "etc/hosts"].filter { OverlayLookup.regularFile($0, in: layers) != nil }
    }

    /// The rootfs mount: a read-only bind of a single layer that has every mount point, else a
    /// read-only overlay with the mount-point skeleton on top.
    func rootfsMount(_ layers: [String]) -> (bind: String?, overlay: String?) {
        // lstat, not stat: a mount point that is a symlink could send /proc somewhere the masks
        // and read-only binds would never find. Anything but real directories gets the skeleton.
        if layers.count == 1, Self.mountPoints.allSatisfy({ FileSystem.isRealDirectory(layers[0] + "/" + $0) }) {
            return (layers[0], nil)
        }
        return (nil, "lowerdir=" + ([paths.skeleton] + layers).joined(separator: ":"))
    }

    private func spawn(
        _ spec: ContainerSpec, name: String, cgroup cg: CgroupSet, keepCapabilities: UInt64, launcher: ParkedLauncher?,
        attachment: NetworkAttachment?, namespace: NamespaceHold?, setup: TimedPhase
    ) throws(RunnerError) -> Container {
        let hostname = spec.hostname ?? (attachment == nil ? name : nodeHostname)
        var bindMounts = spec.bindMounts
        if let attachment, let functionNetwork {
            // Prepared naming the node; only another name costs a write here.
            if hostname != nodeHostname { try functionNetwork.writeHosts(attachment, hostname: hostname) }
            for target in Self.nameFileTargets(spec.layers) {
                let source = target == "etc/hosts" ? attachment.hostsFile : attachment.resolvConf
                bindMounts.append(ContainerSpec.BindMount(source: source, target: "/" + target, readOnly: true))
            }
        }
        // A launcher is already in every cgroup of its sandbox: the child inherits them.
        let entry = launcher == nil ? try CgroupEntry(cg, driver: driver) : CgroupEntry()
        defer { entry.closeAll() }

        var devNull: Int32 = -1
        if spec.stdin == nil || spec.stdout == nil || spec.stderr == nil {
            devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
            if devNull < 0 { throw .system("open", errno: errno, "cannot open /dev/null") }
        }
        defer { if devNull >= 0 { close(devNull) } }

        let arena = CStringArena()
        let rootfs = rootfsMount(spec.layers)
        let binds = bindMounts.map { m in
            let target = String(m.target.drop { $0 == "/" })
            return rn_bind_mount(
                source: arena.string(m.source), target: arena.string(target),
                create_target: (target == "tmp" || target.hasPrefix("tmp/")) ? 1 : 0, read_only: m.readOnly ? 1 : 0)
        }
        let attached = spec.attachedMounts.map { m in
            rn_attach_mount(fd: m.fd, target: arena.string(String(m.target.drop { $0 == "/" })))
        }
        let rlimits = spec.rlimits.map { rn_rlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) }
        let groups = spec.additionalGroups.isEmpty ? [spec.gid] : spec.additionalGroups
        var tmpOptions = "mode=1777"
        if let size = spec.tmpSizeBytes { tmpOptions += ",size=\(size)" }

        var cspec = rn_spawn_spec()
        cspec.rootfs_target = arena.string(paths.mountTarget)
        cspec.bind_source = arena.optionalString(rootfs.bind)
        cspec.overlay_options = arena.optionalString(rootfs.overlay)
        cspec.readonly_rootfs = 1
        cspec.argv = arena.stringArray(spec.argv)
        cspec.envp = arena.stringArray(spec.effectiveEnv)
        cspec.path_env = arena.string(spec.searchPath)
        cspec.workdir = arena.string(spec.workingDirectory)
        cspec.hostname = arena.string(hostname)
        cspec.uid = spec.uid
        cspec.gid = spec.gid
        cspec.groups = arena.array(groups)
        cspec.ngroups = groups.count
        cspec.stdio = (spec.stdin ?? devNull, spec.stdout ?? devNull, spec.stderr ?? devNull)
        cspec.new_network = spec.network.isOwnNamespace ? 1 : 0
        cspec.cgroup_fd = entry.v2Directory
        cspec.join_task_fds = arena.array(entry.v1TaskFiles)
        cspec.njoin_task_fds = entry.v1TaskFiles.count
        cspec.tmp_options = arena.string(tmpOptions)
        cspec.mount_sys = 1
        cspec.binds = arena.array(binds)
        cspec.nbinds = binds.count
        cspec.attach = arena.array(attached)
        cspec.nattach = attached.count
        cspec.masked_paths = arena.stringArray(Self.maskedPaths)
        cspec.readonly_paths = arena.stringArray(Self.readonlyPaths)
        cspec.rlimits = arena.array(rlimits)
        cspec.nrlimits = rlimits.count
        cspec.keep_capabilities = keepCapabilities
        cspec.last_capability = lastCapability
        cspec.init_fd = spec.runsInit ? try InitProcess.descriptor() : -1

        var spawned = rn_spawned()
        let cloneBegan = MonotonicClock.nowNanos()
        let rc: Int32 = seccomp.program.withUnsafeBufferPointer { filter in
            cspec.seccomp_filter = spec.seccomp ? UnsafeRawPointer(filter.baseAddress) : nil
            cspec.seccomp_filter_len = spec.seccomp ? filter.count : 0
            if let launcher { return launcher.launch(&cspec, into: &spawned) }
            return rn_spawn(&cspec, &spawned)
        }
        if rc == -ECHILD, launcher != nil {
            throw RunnerError(.unavailable, "the parked launcher ended before it cloned", step: ParkedLauncher.goneStep)
        }
        if rc < 0 { throw .system("clone3", errno: -rc, "cannot create the container process") }
        let clone = TimedPhase.ending("clone", from: cloneBegan)

        var report = rn_report()
        let outcome = rn_wait_exec(spawned.report_fd, &report)
        if outcome != 0 {
            if outcome < 0 { _ = rn_pidfd_signal(spawned.pidfd, SIGKILL) }
            _ = try? waitForFailedChild(spawned)
            if outcome < 0 { throw .system("read", errno: -outcome, "lost contact with the container during setup") }
            throw Self.startError(stage: report.stage, errno: report.error, spec: spec)
        }

        let exec = TimedPhase.ending("exec", from: clone.end)
        let container = Container(
            name: name, pid: spawned.pid, pidfd: spawned.pidfd, cgroup: cg, driver: driver,
            freezer: try? Freezer(cgroup: cg), sandbox: self, network: attachment, namespace: namespace, startPhases: [setup, clone, exec])
        do {
            // The quota is applied only now, so it never throttled the setup above.
            if spec.limits.cpuMillicores != nil { try driver.applyCPU(cg, millicores: spec.limits.cpuMillicores) }
        } catch {
            _ = rn_pidfd_signal(spawned.pidfd, SIGKILL)
            _ = try? waitForFailedChild(spawned)
            throw error
        }
        return container
    }

    private func waitForFailedChild(_ spawned: rn_spawned) throws(RunnerError) {
        var code: Int32 = 0
        var kind: Int32 = 0
        let rc = rn_pidfd_wait(spawned.pidfd, 0, &code, &kind)
        close(spawned.pidfd)
        if rc < 0 { throw .system("waitid", errno: -rc, "cannot reap the failed container process") }
    }

    /// Turns the child's {stage, errno} into an error a person can act on.
    static func startError(stage: Int32, errno err: Int32, spec: ContainerSpec) -> RunnerError {
        let step = String(cString: rn_stage_name(stage))
        let program = spec.argv[0]
        switch (Int(stage), err) {
        case (Int(RN_STAGE_EXEC.rawValue), ENOENT):
            return RunnerError(.notFound, "executable \(program) not found in the rootfs", step: step, errno: err)
        case (Int(RN_STAGE_EXEC.rawValue), EACCES):
            return RunnerError(
                .containerStart, "\(program) is not executable (not a regular file with an execute bit, or a directory)",
                step: step, errno: err)
        case (Int(RN_STAGE_EXEC.rawValue), ENOEXEC):
            return RunnerError(.containerStart, "\(program) is not a valid executable for this machine", step: step, errno: err)
        case (Int(RN_STAGE_INIT.rawValue), E2BIG):
            return RunnerError(.containerStart, "\(program) has more than 1024 arguments", step: step, errno: err)
        case (Int(RN_STAGE_INIT.rawValue), EACCES):
            return RunnerError(
                .containerStart, "cannot exec fnrunner-init from its memfd (vm.memfd_noexec=2 refuses executable memfds)",
                step: step, errno: err)
        case (Int(RN_STAGE_INIT.rawValue), _):
            return RunnerError(.containerStart, "cannot start fnrunner-init as the container's PID 1", step: step, errno: err)
        case (Int(RN_STAGE_CHDIR.rawValue), _):
            return RunnerError(
                .containerStart, "cannot enter working directory \(spec.workingDirectory) in the rootfs", step: step, errno: err)
        case (Int(RN_STAGE_JOIN_CGROUP.rawValue), _):
            return RunnerError(.containerStart, "the container process cannot join its v1 cgroups (tasks)", step: step, errno: err)
        case (Int(RN_STAGE_ATTACH_MOUNTS.rawValue), _):
            return RunnerError(.containerStart, "cannot attach the container's private mounts (/tmp/iofs)", step: step, errno: err)
        case (Int(RN_STAGE_BIND_MOUNTS.rawValue), _):
            return RunnerError(
                .containerStart, "a bind mount failed (targets outside /tmp must exist in the read-only rootfs)",
                step: step, errno: err)
        default:
            return RunnerError(.containerStart, "container setup failed", step: step, errno: err)
        }
    }
}
