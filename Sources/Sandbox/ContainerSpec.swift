import CgroupDriver
import RunnerOS

/// What to run and how to confine it: the input of `Sandbox.start`.
public struct ContainerSpec: Sendable {
    /// Network namespaces: `none` gives the container its own with only loopback (up);
    /// `bridge` its own on the node's function bridge (a veth, an address, outbound NAT; the
    /// sandbox needs a `FunctionNetworkConfiguration`); `host` shares the runner's.
    public enum Network: String, Sendable, CaseIterable {
        case none, bridge, host

        /// Whether the container gets a network namespace of its own.
        public var isOwnNamespace: Bool { self != .host }
    }

    /// A host directory bound into the container (read-write unless `readOnly`).
    public struct BindMount: Sendable, Equatable {
        public var source: String
        /// Absolute path inside the container. Targets under /tmp are created on demand; others
        /// must exist in the rootfs, which is read-only.
        public var target: String
        public var readOnly: Bool
        public init(source: String, target: String, readOnly: Bool = false) {
            self.source = source
            self.target = target
            self.readOnly = readOnly
        }
    }

    /// A runner-held mount (a `PrivateTmpfs`) attached at `target`, which must lie under /tmp
    /// (its parents are made in the container's own /tmp, never in the image).
    public struct AttachedMount: Sendable, Equatable {
        public var fd: Int32
        public var target: String
        public init(fd: Int32, target: String) {
            self.fd = fd
            self.target = target
        }

        /// As many as the child can keep (RN_MAX_ATTACH_MOUNTS).
        static let maximumCount = 3

        static func validate(_ mounts: [AttachedMount]) throws(RunnerError) {
            func invalid(_ message: String) -> RunnerError { RunnerError(.invalidArgument, message, step: "validate spec") }
            if mounts.count > maximumCount { throw invalid("at most \(maximumCount) attached mounts") }
            for m in mounts {
                if !m.target.hasPrefix("/tmp/") || m.target.split(separator: "/").contains("..") {
                    throw invalid("attached mount target \(m.target) must lie under /tmp and must not contain '..'")
                }
                if m.fd < 3 { throw invalid("attached mount descriptor \(m.fd) is not a mount the runner holds") }
            }
        }
    }

    public struct Rlimit: Sendable, Equatable {
        public var resource: Int32
        public var soft: UInt64
        public var hard: UInt64
        public init(resource: Int32, soft: UInt64, hard: UInt64) {
            self.resource = resource
            self.soft = soft
            self.hard = hard
        }

        /// RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE (the same numbers on
        /// every Linux architecture fnrunner builds for).
        public static let openFiles: Int32 = 7
        public static let lockedMemory: Int32 = 8
        public static let pendingSignals: Int32 = 11
        public static let messageQueue: Int32 = 12

        /// Fn's defaults for them (its agent config.go).
        public static let fnOpenFiles: UInt64 = 350
        public static let fnLockedMemory: UInt64 = 64 << 10
        public static let fnPendingSignals: UInt64 = 5000
        public static let fnMessageQueue: UInt64 = 819_200

        /// Fn's four per-container rlimits (FN_MAX_OPEN_FILES, FN_MAX_LOCKED_MEMORY,
        /// FN_MAX_PENDING_SIGNALS, FN_MAX_MESSAGE_QUEUE), soft = hard, with Fn's defaults.
        public static func fnDefaults(
            openFiles files: UInt64 = fnOpenFiles, lockedMemory memlock: UInt64 = fnLockedMemory,
            pendingSignals signals: UInt64 = fnPendingSignals, messageQueue queue: UInt64 = fnMessageQueue
        ) -> [Rlimit] {
            [
                Rlimit(resource: openFiles, soft: files, hard: files),
                Rlimit(resource: lockedMemory, soft: memlock, hard: memlock),
                Rlimit(resource: pendingSignals, soft: signals, hard: signals),
                Rlimit(resource: messageQueue, soft: queue, hard: queue),
            ]
        }
    }

    /// The rootfs as layer directories, top first. One layer is bound read-only; several are
    /// stacked with a read-only overlay. Nothing is ever copied or written.
    public var layers: [String]
    public var argv: [String]
    public var env: [String]
    public var workingDirectory: String
    public var uid: UInt32
    public var gid: UInt32
    public var additionalGroups: [UInt32]
    public var limits: ResourceLimits
    public var network: Network
    public var bindMounts: [BindMount]
    public var attachedMounts: [AttachedMount]
    public var hostname: String?
    public var rlimits: [Rlimit]
    /// Capability names (e.g. "CAP_NET_BIND_SERVICE") the process keeps. Empty: none, the default.
    public var capabilities: [String]
    /// Size of the /tmp tmpfs in bytes; nil leaves the kernel default (half of RAM, charged to the cgroup).
    public var tmpSizeBytes: UInt64?
    /// Load the default seccomp profile (on unless relaxed by configuration).
    public var seccomp: Bool
    /// Run argv under fnrunner-init as PID 1, which reaps orphaned processes and passes on
    /// signals (Fn runs functions under docker-init). Off, argv itself is PID 1.
    public var runsInit: Bool
    /// Host fds that become the container's stdin, stdout and stderr; nil means /dev/null.
    public var stdin: Int32?
    public var stdout: Int32?
    public var stderr: Int32?

    /// The security defaults of ARCHITECTURE.md: uid:gid 1000:1000, no capabilities, Fn's rlimits,
    /// own network namespace, seccomp on, read-only rootfs.
    public init(layers: [String], argv: [String]) {
        self.layers = layers
        self.argv = argv
        self.env = []
        self.workingDirectory = "/"
        self.uid = 1000
        self.gid = 1000
        self.additionalGroups = []
        self.limits = ResourceLimits()
        self.network = .none
        self.bindMounts = []
        self.attachedMounts = []
        self.hostname = nil
        self.rlimits = Rlimit.fnDefaults()
        self.capabilities = []
        self.tmpSizeBytes = nil
        self.seccomp = true
        self.runsInit = true
    }

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The environment the process gets: the caller's, plus a default PATH if it has none.
    public var effectiveEnv: [String] {
        env.contains { $0.hasPrefix("PATH=") } ? env : env + ["PATH=" + Self.defaultPath]
    }

    /// The PATH used to find argv[0].
    public var searchPath: String {
        // The first PATH=, as getenv in the container will see it.
        effectiveEnv.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? Self.defaultPath
    }

    /// Rejects specs that could never start, before anything is created.
    public func validate(hostCPUs: Int) throws(RunnerError) {
        func invalid(_ message: String) -> RunnerError { RunnerError(.invalidArgument, message, step: "validate spec") }
        if argv.isEmpty || argv[0].isEmpty { throw invalid("no command given: argv is empty") }
        if layers.isEmpty { throw invalid("no rootfs given") }
        for layer in layers {
            if !layer.hasPrefix("/") { throw invalid("rootfs path \(layer) must be absolute") }
            if layer.contains(":") || layer.contains(",") {
                throw invalid("rootfs path \(layer) must not contain ':' or ','")
            }
            if !FileSystem.exists(layer) {
                throw RunnerError(.notFound, "rootfs \(layer) does not exist", step: "validate spec")
            }
            if !FileSystem.isDirectory(layer) { throw invalid("rootfs \(layer) is not a directory") }
        }
        if !workingDirectory.hasPrefix("/") { throw invalid("working directory \(workingDirectory) must be absolute") }
        if uid == UInt32.max || gid == UInt32.max || additionalGroups.contains(UInt32.max) {
            throw invalid("uid and gid must be below 4294967295")
        }
        for e in env where !e.contains("=") || e.hasPrefix("=") {
            throw invalid("environment entry \"\(e)\" is not NAME=VALUE")
        }
        if argv.contains(where: { $0.contains("\0") }) || env.contains(where: { $0.contains("\0") }) {
            throw invalid("arguments and environment must not contain NUL bytes")
        }
        if let h = hostname, h.isEmpty || h.utf8.count > 64 { throw invalid("hostname must be 1..64 bytes") }
        for m in bindMounts {
            if !m.target.hasPrefix("/") || m.target.split(separator: "/").contains("..") {
                throw invalid("bind mount target \(m.target) must be absolute and must not contain '..'")
            }
            if !FileSystem.exists(m.source) {
                throw RunnerError(.notFound, "bind mount source \(m.source) does not exist", step: "validate spec")
            }
        }
        try AttachedMount.validate(attachedMounts)
        try limits.validate(hostCPUs: hostCPUs)
    }
}
