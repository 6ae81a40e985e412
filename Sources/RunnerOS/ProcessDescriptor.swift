import CRunnerShim

/// Pidfds: a process named by a descriptor, never by a pid that could be recycled.
public enum ProcessDescriptor {
    /// A pidfd (close-on-exec) for `pid`.
    public static func open(pid: Int32) throws(RunnerError) -> Int32 {
        let fd = rn_pidfd_open(pid)
        if fd < 0 { throw .system("pidfd_open", errno: -fd, "cannot open a pidfd for process \(pid)") }
        return fd
    }

    /// The host pid behind `pidfd` (its `Pid:` line in /proc/self/fdinfo), whatever pid
    /// namespace the descriptor was opened in. An exited process, or a descriptor that is not
    /// a pidfd, is an error.
    public static func pid(of pidfd: Int32) throws(RunnerError) -> Int32 {
        let info = try FileSystem.read("/proc/self/fdinfo/\(pidfd)")
        for line in info.split(separator: "\n") where line.hasPrefix("Pid:") {
            let value = line.dropFirst(4).drop { $0 == " " || $0 == "\t" }
            guard let pid = Int32(value) else { break }
            guard pid > 0 else { throw RunnerError(.notFound, "the process behind pidfd \(pidfd) has exited", step: "read pidfd") }
            return pid
        }
        throw RunnerError(.invalidArgument, "descriptor \(pidfd) is not a pidfd", step: "read pidfd")
    }
}
