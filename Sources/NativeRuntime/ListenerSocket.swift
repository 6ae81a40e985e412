import Runner
import CRunnerShim
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Fn's check of an FDK's listener, done so that a function can never steer the runner: a
/// unix socket, or a symlink to a socket of the same directory (fdk-go binds a "phony"
/// socket, sets its mode, then links lsnr.sock to it, so the name appears only when the
/// socket is ready). Anything else fails the container's start.
///
/// Everything is resolved relative to the directory's descriptor, one name at a time and
/// never through a second link, and the socket is handed back as an `O_PATH` descriptor that
/// the runner connects through (`/proc/self/fd/N`). So the inode that was checked is the one
/// connected to, whatever the function renames or relinks in between, and no path a function
/// wrote is ever resolved in the host's view.
enum ListenerSocket {
    /// Why a listener cannot be used yet or at all.
    enum Problem: Error {
        /// Not there (yet): the start goes on waiting.
        case absent
        case refused(RunnerError)
    }

    /// The `O_PATH` descriptor of the socket `name` names in `directory` (a descriptor).
    static func open(in directory: Int32, name: String) -> Result<Int32, Problem> {
        var st = stat()
        if fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
            let e = errno
            if e == ENOENT { return .failure(.absent) }
            return .failure(.refused(RunnerError(.containerInit, "cannot stat the listener \(name)", step: "check listener", errno: e)))
        }
        var target = name
        if (st.st_mode & S_IFMT) == S_IFLNK {
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = buffer.withUnsafeMutableBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { readlinkat(directory, name, $0.baseAddress!, $0.count - 1) }
            }
            if n < 0 {
                let e = errno
                // Replaced by something else since the stat: look again.
                if e == EINVAL || e == ENOENT { return .failure(.absent) }
                return .failure(.refused(RunnerError(.containerInit, "cannot read the listener link \(name)", step: "check listener", errno: e)))
            }
            let link = String(decoding: buffer[0..<n], as: UTF8.self)
            if n >= buffer.count - 1 || link.isEmpty || link.contains("/") || link == "." || link == ".." {
                return .failure(.refused(refusal("the listener \(name) links to \(link), which is not a file in the same directory")))
            }
            target = link
        }
        let fd = rn_open_path(directory, target, 0)
        if fd < 0 {
            let e = -fd
            if target == name && e == ENOENT { return .failure(.absent) }
            return .failure(.refused(RunnerError(
                .containerInit, target == name ? "cannot open the listener \(name)" : "the listener \(name) links to \(target), which does not exist",
                step: "check listener", errno: e)))
        }
        var opened = stat()
        let kind = fstat(fd, &opened) == 0 ? opened.st_mode & S_IFMT : 0
        guard kind == S_IFSOCK else {
            close(fd)
            let what = kind == S_IFLNK ? "a second link" : "not a unix socket"
            return .failure(.refused(refusal(
                target == name ? "the listener \(name) is \(what)" : "the listener \(name) links to \(target), which is \(what)")))
        }
        return .success(fd)
    }

    /// Fn's check on a directory given by path (which the caller trusts): throws unless `name`
    /// is a usable listener.
    static func check(directory: String, name: String) throws(RunnerError) {
        let dir = rn_open_path(AT_FDCWD, directory, 1)
        if dir < 0 { throw .system("open", errno: -dir, "cannot open \(directory)") }
        defer { close(dir) }
        switch open(in: dir, name: name) {
        case .success(let fd): close(fd)
        case .failure(.absent): throw RunnerError(.containerInit, "there is no listener \(name)", step: "check listener", errno: ENOENT)
        case .failure(.refused(let error)): throw error
        }
    }

    private static func refusal(_ message: String) -> RunnerError { RunnerError(.containerInit, message, step: "check listener") }

    /// A blocking stream connection to the unix socket at `socketPath` (the runner's own path, or
    /// /proc/self/fd/N of a descriptor from `open`); `name` is what errors call it.
    static func connect(_ socketPath: String, shownAs name: String) throws(RunnerError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .system("socket", errno: errno, "cannot create a unix socket") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw RunnerError(.invalidArgument, "socket path longer than 107 bytes: \(socketPath)", step: "connect")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            close(fd)
            throw .system("connect", errno: e, "cannot connect to the function at \(name)")
        }
        return fd
    }
}
