import FoundationEssentials
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Image names → records, in `<root>/images.json`, changed under an flock so that several
/// fnrunner processes sharing a data directory never lose each other's updates. Every save is
/// a new file fsynced and renamed over the old one.
public final class ImageCatalog: Sendable {
    let path: String
    let lockPath: String

    public init(root: String) {
        path = root + "/images.json"
        lockPath = root + "/images.lock"
    }

    public func all() throws(RunnerError) -> [ImageRecord] {
        try withLock { () throws(RunnerError) in try load() }.values.sorted { $0.name < $1.name }
    }

    public func get(_ name: String) throws(RunnerError) -> ImageRecord? {
        try withLock { () throws(RunnerError) in try load() }[name]
    }

    /// Reads, changes and saves the catalog as one step.
    @discardableResult
    public func update<T>(_ change: (inout [String: ImageRecord]) throws(RunnerError) -> T) throws(RunnerError) -> T {
        try withLock { () throws(RunnerError) -> T in
            var images = try load()
            let result = try change(&images)
            try save(images)
            return result
        }
    }

    private func withLock<T>(_ body: () throws(RunnerError) -> T) throws(RunnerError) -> T {
        let lock = try FileLock(path: lockPath, wait: true)
        defer { lock.release() }
        return try body()
    }

    private func load() throws(RunnerError) -> [String: ImageRecord] {
        guard FileSystem.exists(path) else { return [:] }
        let text = try FileSystem.read(path)
        do {
            return try JSONDecoder().decode([String: ImageRecord].self, from: Data(text.utf8))
        } catch {
            throw RunnerError(.invalidState, "the image catalog \(path) is corrupt: \(error)", step: "load image catalog")
        }
    }

    private func save(_ images: [String: ImageRecord]) throws(RunnerError) {
        let data: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            data = try encoder.encode(images)
        } catch {
            throw RunnerError(.system, "cannot encode the image catalog: \(error)", step: "save image catalog")
        }
        let temp = path + ".tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw .system("open", errno: errno, "cannot write \(temp)") }
        let ok = data.withUnsafeBytes { raw -> Bool in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { return false }
                off += n
            }
            return fsync(fd) == 0
        }
        let e = errno
        close(fd)
        if !ok {
            unlink(temp)
            throw .system("write", errno: e, "cannot save the image catalog")
        }
        if rename(temp, path) != 0 {
            let e = errno
            unlink(temp)
            throw .system("rename", errno: e, "cannot save the image catalog")
        }
    }
}
