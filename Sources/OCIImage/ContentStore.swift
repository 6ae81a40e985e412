import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Blobs by digest under `<root>/blobs/sha256/`.
///
/// A blob is written under a temporary name in `<root>/ingest/`, hashed while it is written,
/// fsynced, and renamed to its digest only when digest and size match. A crash, a full disk or
/// a wrong byte therefore never leaves a blob that a later read would trust.
public final class ContentStore: Sendable {
    public let root: String
    var blobs: String { root + "/blobs/sha256" }
    var ingestDirectory: String { root + "/ingest" }

    public init(root: String) throws(RunnerError) {
        self.root = root
        try FileSystem.makeDirectories(root + "/blobs/sha256", mode: 0o700)
        try FileSystem.makeDirectories(root + "/ingest", mode: 0o700)
        // Leftovers of interrupted writes are never trusted; remove them (but not the files of
        // another live process sharing this store).
        for name in (try? FileSystem.list(ingestDirectory)) ?? [] where ProcessLiveness.isLeftover(name) {
            unlink(ingestDirectory + "/" + name)
        }
    }

    public func path(_ digest: Digest) -> String { blobs + "/" + digest.hex }

    public func has(_ digest: Digest) -> Bool { FileSystem.exists(path(digest)) }

    public func size(_ digest: Digest) -> Int64? {
        var st = stat()
        return stat(path(digest), &st) == 0 ? Int64(st.st_size) : nil
    }

    /// Reads a small blob (manifest, config) and checks it still matches its digest.
    public func read(_ digest: Digest) throws(RunnerError) -> [UInt8] {
        let bytes = try readFile(path(digest))
        if Digest.of(bytes) != digest {
            throw RunnerError(.invalidState, "blob \(digest) in the content store is corrupt", step: "verify blob")
        }
        return bytes
    }

    /// Stores bytes; returns their digest. With `expected`, refuses bytes that do not match.
    @discardableResult
    public func write(_ bytes: [UInt8], expected: Digest? = nil) throws(RunnerError) -> Digest {
        let writer = try BlobWriter(store: self)
        do {
            try writer.write(bytes)
            return try writer.commit(expected: expected ?? Digest.of(bytes), size: Int64(bytes.count))
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Copies a file into the store, verifying it (imports).
    @discardableResult
    public func ingestFile(_ source: String, expected: Digest, size: Int64?) throws(RunnerError) -> Digest {
        if has(expected) { return expected }
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .system("open", errno: errno, "cannot open \(source)") }
        defer { close(fd) }
        let writer = try BlobWriter(store: self)
        do throws(RunnerError) {
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0 { throw RunnerError.system("read", errno: errno, "cannot read \(source)") }
                if n == 0 { break }
                try writer.write(buf[0..<n])
            }
            return try writer.commit(expected: expected, size: size)
        } catch {
            writer.abort()
            throw error
        }
    }

    public func delete(_ digest: Digest) {
        unlink(path(digest))
    }

    /// Every blob in the store.
    public func allBlobs() -> [Digest] {
        ((try? FileSystem.list(blobs)) ?? []).compactMap { try? Digest.parse("sha256:" + $0) }
    }

    func readFile(_ path: String) throws(RunnerError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .system("open", errno: errno, "cannot open \(path)") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw .system("read", errno: errno, "cannot read \(path)") }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }
}

/// One blob being written: hashed as it goes, renamed into place only by `commit`.
public final class BlobWriter {
    let store: ContentStore
    let tempPath: String
    private var fd: Int32
    private var hasher = SHA256Hasher()
    public private(set) var written: Int64 = 0

    init(store: ContentStore) throws(RunnerError) {
        self.store = store
        tempPath = store.ingestDirectory + "/\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw .system("open", errno: errno, "cannot create \(tempPath)") }
    }

    public func write(_ bytes: some Collection<UInt8>) throws(RunnerError) {
        var copy = Array(bytes)
        let result: Int32 = copy.withUnsafeMutableBytes { raw in
            hasher.update(UnsafeRawBufferPointer(raw))
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                off += n
            }
            return 0
        }
        if result != 0 { throw .system("write", errno: result, "cannot write blob to \(tempPath)") }
        written += Int64(copy.count)
    }

    /// Verifies digest and size, makes the data durable, and renames it into place.
    public func commit(expected: Digest, size: Int64?) throws(RunnerError) -> Digest {
        let actual = hasher.finish()
        if let size, size != written {
            abort()
            throw RunnerError(.invalidState, "blob \(expected) has \(written) bytes, expected \(size)", step: "verify blob")
        }
        if actual != expected {
            abort()
            throw RunnerError(.invalidState, "blob content does not match its digest: expected \(expected), got \(actual)", step: "verify blob")
        }
        if fsync(fd) != 0 {
            let e = errno
            abort()
            throw .system("fsync", errno: e, "cannot make blob \(expected) durable")
        }
        close(fd)
        fd = -1
        if rename(tempPath, store.path(expected)) != 0 {
            let e = errno
            unlink(tempPath)
            throw .system("rename", errno: e, "cannot store blob \(expected)")
        }
        return expected
    }

    /// Starts over (a server ignored a resume request and sent the whole blob).
    public func reset() throws(RunnerError) {
        if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0 {
            throw .system("ftruncate", errno: errno, "cannot restart blob \(tempPath)")
        }
        hasher = SHA256Hasher()
        written = 0
    }

    public func abort() {
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(tempPath)
    }

    deinit { if fd >= 0 { abort() } }
}
