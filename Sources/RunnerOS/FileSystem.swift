#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Small, synchronous file operations on kernel interface files (cgroupfs, procfs) and the
/// runner's state directory.
///
/// Foundation is deliberately not used: these calls sit on the container start path, where every
/// microsecond and every allocation shows, and their errors must name the syscall and path.
public enum FileSystem {
    /// Reads a whole (small) file as UTF-8. Kernel interface files fit in one 4 KiB read done
    /// into stack memory; longer files continue into a growing buffer.
    public static func read(_ path: String) throws(RunnerError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .system("open", errno: errno, "cannot open \(path)") }
        defer { close(fd) }
        let result: Result<String, RunnerError> = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { chunk in
            var bytes: [UInt8] = []
            while true {
                let n = Glibc.read(fd, chunk.baseAddress, chunk.count)
                if n < 0 {
                    if errno == EINTR { continue }
                    return .failure(.system("read", errno: errno, "cannot read \(path)"))
                }
                if n == 0 { break }
                if bytes.isEmpty && n < chunk.count {
                    // The common case: the whole file in one read.
                    let first = UnsafeBufferPointer(rebasing: chunk[0..<n])
                    let m = Glibc.read(fd, chunk.baseAddress! + n, chunk.count - n)
                    if m == 0 { return .success(String(decoding: first, as: UTF8.self)) }
                    bytes.append(contentsOf: first)
                    if m > 0 { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[n..<(n + m)])) }
                    continue
                }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[0..<n]))
            }
            return .success(String(decoding: bytes, as: UTF8.self))
        }
        return try result.get()
    }

    /// The first `bytes` bytes of a file (fewer if it is shorter).
    public static func readPrefix(_ path: String, bytes: Int) throws(RunnerError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .system("open", errno: errno, "cannot open \(path)") }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: bytes)
        let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, bytes, 0) }
        if n < 0 { throw .system("pread", errno: errno, "cannot read \(path)") }
        return Array(out[0..<n])
    }

    /// A file's size in bytes, or nil if it cannot be stat'ed.
    public static func size(_ path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_size) : nil
    }

    /// Writes `value` with a single write(2), as kernel interface files require (O_TRUNC is
    /// ignored by cgroupfs and keeps regular files, such as a fake cgroup tree, exact).
    public static func write(_ path: String, _ value: String) throws(RunnerError) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        if fd < 0 { throw .system("open", errno: errno, "cannot open \(path) for writing") }
        defer { close(fd) }
        var v = value
        let (n, err): (Int, Int32) = v.withUTF8 { buf in
            var r: Int
            repeat { r = Glibc.write(fd, buf.baseAddress, buf.count) } while r < 0 && errno == EINTR
            return (r, errno)
        }
        if n < 0 { throw .system("write", errno: err, "cannot write \"\(value)\" to \(path)") }
    }

    /// Creates or truncates a regular file with `contents`.
    public static func create(_ path: String, contents: String, mode: mode_t = 0o644) throws(RunnerError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        if fd < 0 { throw .system("open", errno: errno, "cannot create \(path)") }
        defer { close(fd) }
        var v = contents
        let n = v.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw .system("write", errno: errno, "cannot write \(path)") }
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates one directory. Returns false if it already existed.
    @discardableResult
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(RunnerError) -> Bool {
        if mkdir(path, mode) == 0 { return true }
        if errno == EEXIST { return false }
        throw .system("mkdir", errno: errno, "cannot create directory \(path)")
    }

    /// A regular file itself, not a symlink to one.
    public static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// A directory itself, not a symlink to one.
    public static func isRealDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(RunnerError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            try makeDirectory(current, mode: mode)
        }
    }

    /// rmdir(2).
    public static func removeDirectory(_ path: String) throws(RunnerError) {
        if rmdir(path) != 0 { throw .system("rmdir", errno: errno, "cannot remove directory \(path)") }
    }

    /// The names in a directory, without "." and "..".
    public static func list(_ path: String) throws(RunnerError) -> [String] {
        guard let dir = opendir(path) else { throw .system("opendir", errno: errno, "cannot list \(path)") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Names in the directory open as `fd` (the descriptor stays the caller's): for walks that
    /// must stay inside one directory tree whatever links it holds.
    public static func list(directoryFD fd: Int32) throws(RunnerError) -> [String] {
        let own = dup(fd)
        if own < 0 { throw .system("dup", errno: errno, "cannot list a directory descriptor") }
        guard let dir = fdopendir(own) else {
            let e = errno
            close(own)
            throw .system("fdopendir", errno: e, "cannot list a directory descriptor")
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else { break }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        // readdir's end and its failure look alike but for errno (an O_PATH descriptor: EBADF).
        if errno != 0 { throw .system("readdir", errno: errno, "cannot list a directory descriptor") }
        return names
    }

    /// Names of the subdirectories of `path` (no symlinks followed).
    public static func subdirectories(_ path: String) throws(RunnerError) -> [String] {
        try list(path).filter { name in
            var st = stat()
            return lstat(path + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }
    }

    /// rm -rf that never follows symlinks. Missing paths are fine.
    public static func removeTree(_ path: String) throws(RunnerError) {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw .system("lstat", errno: errno, "cannot inspect \(path)")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT {
                throw .system("rmdir", errno: errno, "cannot remove directory \(path)")
            }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw .system("unlink", errno: errno, "cannot remove \(path)")
        }
    }
}
