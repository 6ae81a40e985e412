import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Unpacked layers, once each, under `<root>/sha256/<diff id>/`, shared by every image and
/// container that uses them. A layer is unpacked into a temporary directory and renamed into
/// place only after its diff ID checked out, so a directory under its digest is always whole.
public final class LayerStore: Sendable {
    public let root: String

    public init(root: String) throws(RunnerError) {
        self.root = root
        try FileSystem.makeDirectories(root + "/sha256", mode: 0o700)
        try FileSystem.makeDirectories(root + "/tmp", mode: 0o700)
        for name in (try? FileSystem.list(root + "/tmp")) ?? [] where ProcessLiveness.isLeftover(name) {
            try? FileSystem.removeTree(root + "/tmp/" + name)
        }
    }

    public func path(_ diffID: Digest) -> String { root + "/sha256/" + diffID.hex }

    public func has(_ diffID: Digest) -> Bool { FileSystem.isDirectory(path(diffID)) }

    /// Unpacks `blob` unless the layer is already there; returns its directory.
    @discardableResult
    public func ensure(diffID: Digest, blob: String) throws(RunnerError) -> String {
        let final = path(diffID)
        if has(diffID) { return final }
        let temp = root + "/tmp/\(getpid())-\(diffID.hex.prefix(12))-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectory(temp, mode: 0o755)
        do throws(RunnerError) {
            let result = try LayerUnpacker().unpack(blob: blob, into: temp, mode: .overlayLayer)
            if result.diffID != diffID {
                throw RunnerError(
                    .invalidState, "layer content does not match its diff ID: expected \(diffID), got \(result.diffID)",
                    step: "verify layer")
            }
            if rename(temp, final) != 0 {
                let e = errno
                // Another unpack of the same layer won the race: use its copy.
                if (e == ENOTEMPTY || e == EEXIST) && has(diffID) {
                    try? FileSystem.removeTree(temp)
                    return final
                }
                throw RunnerError.system("rename", errno: e, "cannot store layer \(diffID)")
            }
            return final
        } catch {
            try? FileSystem.removeTree(temp)
            throw error
        }
    }

    public func remove(_ diffID: Digest) throws(RunnerError) { try FileSystem.removeTree(path(diffID)) }

    public func all() -> [Digest] {
        ((try? FileSystem.list(root + "/sha256")) ?? []).compactMap { try? Digest.parse("sha256:" + $0) }
    }
}
