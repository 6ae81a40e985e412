import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Copies what a bytecode build wrote (a tree in a private tmpfs, written by code of the image)
/// into a layer directory, keeping only what a bytecode layer may hold: a `.pyc` under a
/// `__pycache__` directory, beside a world-readable regular `.py` of the image, at a path the
/// image does not already have. Everything else (links, devices, other files, over-sized
/// files) is left out and counted. The tree is read only through descriptors opened with
/// O_NOFOLLOW, so nothing in it can lead the copy anywhere else.
///
/// Directories the layer must hold take the mode, owner and times the image shows for them, so
/// stacking the layer changes nothing a function can see but the new `__pycache__` entries.
struct CompiledTree {
    struct Summary: Sendable, Equatable {
        var files = 0
        var bytes: Int64 = 0
        /// Entries left out, with the first few reasons for the log.
        var rejected = 0
        var reasons: [String] = []
    }

    /// A `.pyc` larger than this is not bytecode a function would load.
    static let maximumFileBytes: Int64 = 32 << 20
    static let maximumDepth = 64

    let imageLayers: [String]
    let destination: String
    private(set) var summary = Summary()
    /// Directories made in the layer (relative), whose times are set once their contents are in.
    private var madeDirectories: [(String, OverlayLookup.Entry?)] = []
    private var made = Set<String>()

    init(imageLayers: [String], destination: String) {
        self.imageLayers = imageLayers
        self.destination = destination
    }

    /// Copies from the tree whose root is open as `rootFD` (an O_PATH descriptor will do, as
    /// fsmount(2) gives) into `destination`.
    static func copy(from rootFD: Int32, imageLayers: [String], into destination: String) throws(RunnerError) -> Summary {
        let root = openat(rootFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if root < 0 { throw .system("openat", errno: errno, "cannot open the compile's output") }
        defer { close(root) }
        var tree = CompiledTree(imageLayers: imageLayers, destination: destination)
        try tree.walk(root, relative: [])
        tree.settleDirectoryTimes()
        return tree.summary
    }

    private mutating func reject(_ path: String, _ why: String) {
        summary.rejected += 1
        if summary.reasons.count < 5 { summary.reasons.append("/\(path): \(why)") }
    }

    private mutating func walk(_ dirFD: Int32, relative: [String]) throws(RunnerError) {
        if relative.count > Self.maximumDepth {
            reject(relative.joined(separator: "/"), "nested deeper than \(Self.maximumDepth)")
            return
        }
        for name in try FileSystem.list(directoryFD: dirFD).sorted() {
            let path = relative + [name]
            var st = stat()
            if fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                reject(path.joined(separator: "/"), "cannot stat (errno \(errno))")
                continue
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let fd = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd < 0 {
                    reject(path.joined(separator: "/"), "cannot open (errno \(errno))")
                    continue
                }
                defer { close(fd) }
                try walk(fd, relative: path)
            case S_IFREG:
                try take(dirFD, name: name, path: path, size: Int64(st.st_size))
            default:
                reject(path.joined(separator: "/"), "not a regular file or directory")
            }
        }
    }

    /// The source a cache file belongs to: `dir/__pycache__/mod.<tag>.pyc` → `dir/mod.py`.
    static func source(ofCacheFile path: [String]) -> String? {
        guard path.count >= 2, path[path.count - 2] == "__pycache__", let file = path.last, file.hasSuffix(".pyc") else {
            return nil
        }
        let module = file.split(separator: ".", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard !module.isEmpty, file.split(separator: ".").count >= 3 else { return nil }
        return (path.dropLast(2) + [module + ".py"]).joined(separator: "/")
    }

    private mutating func take(_ dirFD: Int32, name: String, path: [String], size: Int64) throws(RunnerError) {
        let relative = path.joined(separator: "/")
        guard let source = Self.source(ofCacheFile: path) else { return reject(relative, "not a cache file of a module") }
        guard let src = OverlayLookup.entry(source, in: imageLayers), src.isRegularFile else {
            return reject(relative, "the image has no regular file /\(source)")
        }
        guard src.mode & 0o004 != 0 else { return reject(relative, "/\(source) is not readable by everyone") }
        if OverlayLookup.entry(relative, in: imageLayers) != nil { return reject(relative, "the image has this path already") }
        if size > Self.maximumFileBytes { return reject(relative, "larger than \(Self.maximumFileBytes >> 20) MiB") }

        let input = openat(dirFD, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if input < 0 { return reject(relative, "cannot open (errno \(errno))") }
        defer { close(input) }
        try makeParents(Array(path.dropLast()))
        let target = destination + "/" + relative
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if output < 0 { throw .system("open", errno: errno, "cannot create \(target)") }
        defer { close(output) }
        var copied: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while copied <= Self.maximumFileBytes {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .system("read", errno: errno, "cannot read the compiled /\(relative)")
            }
            if n == 0 { break }
            var written = 0
            while written < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                if w < 0 {
                    if errno == EINTR { continue }
                    throw .system("write", errno: errno, "cannot write \(target)")
                }
                written += w
            }
            copied += Int64(n)
        }
        if fchmod(output, 0o644) != 0 { throw .system("fchmod", errno: errno, "cannot set the mode of \(target)") }
        summary.files += 1
        summary.bytes += copied
    }

    /// Makes the layer's directories down to `path`, each as the image shows it (a new
    /// `__pycache__`: root's, 0755).
    private mutating func makeParents(_ path: [String]) throws(RunnerError) {
        for depth in path.indices.map({ $0 + 1 }) {
            let relative = path.prefix(depth).joined(separator: "/")
            if made.contains(relative) { continue }
            let image = OverlayLookup.entry(relative, in: imageLayers)
            if let image, !image.isDirectory {
                throw RunnerError(.invalidState, "/\(relative) is not a directory in the image", step: "copy bytecode")
            }
            let dir = destination + "/" + relative
            if mkdir(dir, 0o700) != 0 { throw .system("mkdir", errno: errno, "cannot create \(dir)") }
            let mode = image.map { $0.mode & 0o7777 } ?? 0o755
            if chown(dir, image?.uid ?? 0, image?.gid ?? 0) != 0 { throw .system("chown", errno: errno, "cannot own \(dir)") }
            if chmod(dir, mode_t(mode)) != 0 { throw .system("chmod", errno: errno, "cannot set the mode of \(dir)") }
            made.insert(relative)
            madeDirectories.append((dir, image))
        }
    }

    /// Gives each directory the image's times (deepest first: making a child changes its parent's).
    private func settleDirectoryTimes() {
        for (dir, image) in madeDirectories.reversed() {
            guard let image else { continue }
            var times = [
                timespec(tv_sec: image.modifiedSeconds, tv_nsec: image.modifiedNanoseconds),
                timespec(tv_sec: image.modifiedSeconds, tv_nsec: image.modifiedNanoseconds),
            ]
            _ = utimensat(AT_FDCWD, dir, &times, AT_SYMLINK_NOFOLLOW)
        }
    }
}
