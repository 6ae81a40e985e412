#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whether a process exists, for telling a live process's temporary files from a dead one's.
public enum ProcessLiveness {
    public static func isAlive(_ pid: Int32) -> Bool {
        if pid <= 0 { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// For names "<pid>-<anything>": true when that pid is gone (the file is a leftover).
    public static func isLeftover(_ name: String) -> Bool {
        guard let pid = name.split(separator: "-").first.flatMap({ Int32($0) }) else { return true }
        return pid != getpid() && !isAlive(pid)
    }
}
