import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runner-made layers of compiled Python bytecode, one per image, keyed by the image's config
/// digest (its ID) under `<root>/sha256/<hex>/`. A Python image ships no `.pyc` for the code
/// pip installed into it, and a read-only rootfs cannot keep what the interpreter compiles, so
/// every cold start would compile the same modules again; this layer, stacked on top of the
/// image's own, holds them once. It only adds `__pycache__` entries the image lacks.
///
/// An image that got no layer (no interpreter, nothing to compile, a failed build) has a
/// record under `<root>/skipped/<hex>` saying why, so no start looks for one again. Layers are
/// built in `<root>/tmp/` and renamed into place whole, like unpacked image layers.
public final class BytecodeLayers: Sendable {
    public let root: String

    public enum State: Sendable, Equatable {
        /// The layer's directory.
        case built(String)
        /// Why the image has none.
        case skipped(String)
        /// Never tried (or the record was removed with its image).
        case unknown
    }

    public init(root: String) throws(RunnerError) {
        self.root = root
        for dir in ["sha256", "skipped", "tmp"] { try FileSystem.makeDirectories(root + "/" + dir, mode: 0o700) }
        for name in (try? FileSystem.list(root + "/tmp")) ?? [] where ProcessLiveness.isLeftover(name) {
            try? FileSystem.removeTree(root + "/tmp/" + name)
        }
    }

    public func path(_ image: Digest) -> String { root + "/sha256/" + image.hex }

    private func skipRecord(_ image: Digest) -> String { root + "/skipped/" + image.hex }

    /// The layer's directory if it was built (one lstat: this is on every container start).
    public func layer(_ image: Digest) -> String? {
        let dir = path(image)
        return FileSystem.isRealDirectory(dir) ? dir : nil
    }

    public func state(_ image: Digest) -> State {
        if let dir = layer(image) { return .built(dir) }
        if let reason = try? FileSystem.read(skipRecord(image)) { return .skipped(reason) }
        return .unknown
    }

    /// A fresh directory to build a layer in; pass it to `commit` or remove it.
    public func makeTemporary(for image: Digest) throws(RunnerError) -> String {
        let temp = root + "/tmp/\(getpid())-\(image.hex.prefix(12))-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectory(temp, mode: 0o755)
        return temp
    }

    /// Moves a finished layer into place (a concurrent build that won keeps its copy) and
    /// forgets any skip record.
    public func commit(_ temp: String, for image: Digest) throws(RunnerError) {
        if rename(temp, path(image)) != 0 {
            let e = errno
            try? FileSystem.removeTree(temp)
            guard (e == ENOTEMPTY || e == EEXIST) && FileSystem.isRealDirectory(path(image)) else {
                throw RunnerError.system("rename", errno: e, "cannot store the bytecode layer of \(image)")
            }
        }
        unlink(skipRecord(image))
    }

    /// Records why `image` gets no layer.
    public func skip(_ image: Digest, reason: String) throws(RunnerError) {
        let temp = root + "/tmp/\(getpid())-skip-\(image.hex.prefix(12))-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.create(temp, contents: reason, mode: 0o600)
        if rename(temp, skipRecord(image)) != 0 {
            let e = errno
            unlink(temp)
            throw RunnerError.system("rename", errno: e, "cannot record the bytecode state of \(image)")
        }
    }

    /// Removes the layer and the skip record of `image`.
    public func remove(_ image: Digest) throws(RunnerError) {
        if FileSystem.exists(path(image)) { try FileSystem.removeTree(path(image)) }
        unlink(skipRecord(image))
    }

    /// Every image that has a layer or a skip record.
    public func all() -> Set<Digest> {
        var images = Set<Digest>()
        for dir in ["sha256", "skipped"] {
            for name in (try? FileSystem.list(root + "/" + dir)) ?? [] {
                if let d = try? Digest.parse("sha256:" + name) { images.insert(d) }
            }
        }
        return images
    }
}
