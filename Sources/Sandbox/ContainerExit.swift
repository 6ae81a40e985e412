import RunnerOS

/// How a container ended: its init process's exit, and whether the kernel killed something in
/// it for the memory limit (taken from the cgroup's OOM counter, never guessed from code 137).
public struct ContainerExit: Sendable, Equatable, CustomStringConvertible {
    public var process: ProcessExit
    public var outOfMemory: Bool

    public init(process: ProcessExit, outOfMemory: Bool) {
        self.process = process
        self.outOfMemory = outOfMemory
    }

    /// The exit status a shell (or `fnrunner run`) reports: 137 for out of memory, like Docker.
    public var shellStatus: Int32 { outOfMemory ? 137 : process.shellStatus }

    public var description: String { outOfMemory ? "out of memory (\(process))" : process.description }
}
