import RunnerOS

/// The limits a container's cgroup enforces. The runner's own type, independent of OCI specs.
public struct ResourceLimits: Sendable, Equatable {
    /// Memory limit in bytes; swap is always limited to the same value (no swap). nil: unlimited.
    public var memoryBytes: UInt64?
    /// CPU in millicores: 1000 is one CPU, enforced as a CFS quota per 100 ms period. nil: unlimited.
    public var cpuMillicores: Int?
    /// Maximum number of tasks (processes and threads). nil: unlimited.
    public var pids: Int?

    public init(memoryBytes: UInt64? = nil, cpuMillicores: Int? = nil, pids: Int? = nil) {
        self.memoryBytes = memoryBytes
        self.cpuMillicores = cpuMillicores
        self.pids = pids
    }

    /// The CFS period the runner uses everywhere, in microseconds.
    public static let cpuPeriodMicros = 100_000
    /// Below this the kernel cannot run a process usefully (Docker's floor is 6 MiB too).
    public static let minimumMemoryBytes: UInt64 = 6 << 20
    /// The kernel rejects CFS quotas under 1 ms: 1000 µs per 100 ms is 10 millicores.
    public static let minimumCPUMillicores = 10
    public static let maximumPids = 4_194_304

    /// The CFS quota for `cpuMillicores`, in microseconds per period.
    public var cpuQuotaMicros: Int? { cpuMillicores.map { $0 * Self.cpuPeriodMicros / 1000 } }

    /// Rejects limits the kernel would refuse or that make no sense on this host.
    public func validate(hostCPUs: Int) throws(RunnerError) {
        if let m = memoryBytes, m < Self.minimumMemoryBytes {
            throw RunnerError(
                .invalidArgument,
                "memory limit \(m) bytes is below the minimum of \(Self.minimumMemoryBytes >> 20) MiB",
                step: "validate limits")
        }
        if let c = cpuMillicores {
            let maxMillis = max(1, hostCPUs) * 1000
            if c < Self.minimumCPUMillicores || c > maxMillis {
                throw RunnerError(
                    .invalidArgument,
                    "CPU limit \(c) millicores is out of range: use \(Self.minimumCPUMillicores)..\(maxMillis) on this host with \(hostCPUs) CPUs",
                    step: "validate limits")
            }
        }
        if let p = pids, p < 1 || p > Self.maximumPids {
            throw RunnerError(
                .invalidArgument, "pids limit \(p) is out of range: use 1..\(Self.maximumPids)", step: "validate limits")
        }
    }
}
