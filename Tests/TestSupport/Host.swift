import CgroupDriver
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the test host can do; privileged tests are enabled by these, and say why when skipped.
public enum Host {
    public static var isRoot: Bool { geteuid() == 0 }

    /// The sandbox pool size tests run with: FN_SANDBOX_POOL_SIZE, else 0 (scripts/test runs the
    /// container suites once without a pool and once with one).
    public static var sandboxPoolSize: Int {
        getenv("FN_SANDBOX_POOL_SIZE").flatMap { Int(String(cString: $0)) } ?? 0
    }

    public static var layout: CgroupLayout? { try? CgroupLayout.detect() }

    /// Root, plus a cgroup layout with memory, cpu and pids somewhere.
    public static var canRunContainers: Bool {
        guard isRoot, let layout else { return false }
        return layout.kind == .unified || (layout.v1Mounts["memory"] != nil && layout.v1Mounts["pids"] != nil)
    }

    /// A v2 tree with cgroup.freeze (kernel 5.2+), or a v1 freezer.
    public static var hasFreezer: Bool {
        guard let layout else { return false }
        return layout.v2Mount != nil || layout.v1Mounts["freezer"] != nil
    }

    /// This process's open descriptors and what each refers to (readlink of /proc/self/fd/N).
    public static func descriptors() -> [(fd: Int32, target: String)] {
        var found: [(fd: Int32, target: String)] = []
        var buf = [CChar](repeating: 0, count: 4096)
        for name in (try? FileSystem.list("/proc/self/fd")) ?? [] {
            let n = readlink("/proc/self/fd/" + name, &buf, buf.count - 1)
            guard n > 0, let fd = Int32(name) else { continue }
            buf[n] = 0
            found.append((fd, String(cString: buf)))
        }
        return found
    }

    /// What each open descriptor of this process refers to.
    public static func descriptorTargets() -> [String] { descriptors().map(\.target) }

    /// Open fds of this process of the kinds a container start creates: pidfds, pipes,
    /// directories in cgroupfs, /dev/null. (Test fixtures' own files are not counted.)
    public static func containerFDs() -> [String] {
        descriptorTargets().filter { target in
            target.contains("pidfd") || target.hasPrefix("pipe:") || target.hasPrefix("/sys/fs/cgroup") || target == "/dev/null"
        }.map { $0.hasPrefix("pipe:") ? "pipe" : $0 }.sorted()
    }

    /// Whether `pid` exists and is not a zombie (a process that ended but was not reaped yet).
    public static func isRunning(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? FileSystem.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else {
            return false
        }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// Zombie children of this process.
    public static func zombieChildren() -> Int {
        let me = getpid()
        var count = 0
        for name in (try? FileSystem.list("/proc")) ?? [] where Int32(name) != nil {
            guard let stat = try? FileSystem.read("/proc/\(name)/stat") else { continue }
            // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
            guard let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, fields[0] == "Z", Int32(fields[1]) == me { count += 1 }
        }
        return count
    }

    /// Mounts whose mount point contains `fragment`.
    public static func mounts(containing fragment: String) -> [String] {
        ((try? MountInfo.current()) ?? []).map(\.mountPoint).filter { $0.contains(fragment) }
    }

    /// A loopback TCP port nobody uses now (for servers a test starts), outside the kernel's
    /// ephemeral range: a port from there could become some connection's local port, or another
    /// test's `bind(0)`, between this answer and the server's bind. Successive calls walk the range.
    public static func freeLoopbackPort() throws -> Int {
        for _ in 0..<TestPorts.count {
            let port = TestPorts.next()
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw RunnerError.system("socket", errno: errno, "free loopback port") }
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(port).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 { return port }
        }
        throw RunnerError(.unavailable, "no free loopback port in \(TestPorts.range)", step: "free loopback port")
    }
}
