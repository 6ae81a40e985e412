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
        guard let pid = field("Pid", in: info).flatMap({ Int32($0) }) else {
            throw RunnerError(.invalidArgument, "descriptor \(pidfd) is not a pidfd", step: "read pidfd")
        }
        guard pid > 0 else { throw RunnerError(.notFound, "the process behind pidfd \(pidfd) has exited", step: "read pidfd") }
        return pid
    }

    /// The parent of `pid` (its `PPid:` in /proc), or nil if it cannot be read.
    public static func parent(of pid: Int32) -> Int32? {
        (try? FileSystem.read("/proc/\(pid)/status")).flatMap { field("PPid", in: $0) }.flatMap { Int32($0) }
    }

    /// The value of a `Name:<tabs or spaces>value` line of a /proc file.
    static func field(_ name: String, in text: String) -> Substring? {
        let prefix = name + ":"
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return line.dropFirst(prefix.count).drop { $0 == " " || $0 == "\t" }
    }
}
