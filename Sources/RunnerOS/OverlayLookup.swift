import CRunnerShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Finds a file as a read-only overlay of unpacked layers would show it, without following
/// any link: what the runner reads or mounts over on an image's behalf must be the file the
/// function sees, never a path an image's symlink points somewhere else.
public enum OverlayLookup {
    public struct Found: Sendable, Equatable {
        public let path: String
        public let size: Int64
    }

    /// An entry of any type as the merged view shows it: the top-most layer's copy, with the
    /// attributes overlayfs would show for it.
    public struct Entry: Sendable, Equatable {
        public let path: String
        /// Type and permission bits (`st_mode`).
        public let mode: UInt32
        public let uid: UInt32
        public let gid: UInt32
        public let size: Int64
        public let modifiedSeconds: Int
        public let modifiedNanoseconds: Int

        public var isDirectory: Bool { (mode & S_IFMT) == S_IFDIR }
        public var isRegularFile: Bool { (mode & S_IFMT) == S_IFREG }
    }

    /// The regular file at `relative` (no leading "/") in `layers` (top first, whiteouts in
    /// overlay format), or nil when the merged view has none there: absent, whited out, under
    /// an opaque directory or a parent that is not a real directory, or not a regular file.
    public static func regularFile(_ relative: String, in layers: [String]) -> Found? {
        guard let e = entry(relative, in: layers), e.isRegularFile else { return nil }
        return Found(path: e.path, size: e.size)
    }

    /// Whatever is at `relative` in the merged view of `layers` (a link is reported, never
    /// followed), or nil when nothing is: absent, whited out, under an opaque directory or
    /// under a parent that is not a real directory.
    public static func entry(_ relative: String, in layers: [String]) -> Entry? {
        let parts = relative.split(separator: "/").map(String.init)
        guard !parts.isEmpty else { return nil }
        for layer in layers {
            var st = stat()
            var path = layer
            for (i, part) in parts.enumerated() {
                path += "/" + part
                if lstat(path, &st) != 0 { break }
                if (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0 { return nil }  // whiteout
                if i < parts.count - 1 && (st.st_mode & S_IFMT) != S_IFDIR { return nil }
                if i == parts.count - 1 {
                    return Entry(
                        path: path, mode: st.st_mode, uid: st.st_uid, gid: st.st_gid, size: Int64(st.st_size),
                        modifiedSeconds: st.st_mtim.tv_sec, modifiedNanoseconds: st.st_mtim.tv_nsec)
                }
            }
            // An opaque parent directory hides the layers below.
            var parent = layer
            for part in parts.dropLast() {
                parent += "/" + part
                if rn_overlay_opaque(parent) == 1 { return nil }
            }
        }
        return nil
    }
}
