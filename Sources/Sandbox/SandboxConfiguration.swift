import CgroupDriver
import Logging
import NodeNetwork

/// Where a sandbox keeps its state and cgroups.
public struct SandboxConfiguration: Sendable {
    /// Runtime state: the lock of each runner instance, the mount target and the mount-point
    /// skeleton. Belongs on a tmpfs (/run), so a reboot clears it together with the cgroups.
    public var stateDirectory: String
    /// Relative cgroup path of the runner's root in every hierarchy.
    public var cgroupRoot: String
    /// The host's cgroup layout; nil detects it from /proc/self/mountinfo.
    public var layout: CgroupLayout?
    public var logger: Logger
    /// Sandboxes kept ready (cgroups made, a launcher parked in them with a network namespace),
    /// so starts skip the slow steps; 0 turns the pool off. Capped at `maximumPoolSize`.
    public var poolSize: Int

    /// Each pooled sandbox holds a process, a network namespace and a cgroup per hierarchy.
    public static let maximumPoolSize = 64
    /// The node's function bridge; nil: containers cannot use `ContainerSpec.Network.bridge`.
    public var functionNetwork: FunctionNetworkConfiguration?
    /// The network the pool prepares its namespaces for (`none` or `bridge`): starts on that
    /// network come from the pool, others take the direct path.
    public var poolNetwork: ContainerSpec.Network

    public init(
        stateDirectory: String = "/run/fnrunner",
        cgroupRoot: String = "fnrunner",
        layout: CgroupLayout? = nil,
        logger: Logger = Logger(label: "fnrunner.sandbox"),
        poolSize: Int = 0,
        functionNetwork: FunctionNetworkConfiguration? = nil,
        poolNetwork: ContainerSpec.Network = .none
    ) {
        self.stateDirectory = stateDirectory
        self.cgroupRoot = cgroupRoot
        self.layout = layout
        self.logger = logger
        self.poolSize = poolSize
        self.functionNetwork = functionNetwork
        self.poolNetwork = poolNetwork
    }
}
