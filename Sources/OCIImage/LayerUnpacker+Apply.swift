import CArchive
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// libarchive's AE_IF* are macros with casts, which Swift does not import.
let entryTypeDirectory: mode_t = 0o040000
let entryTypeCharDevice: mode_t = 0o020000
let entryTypeBlockDevice: mode_t = 0o060000

/// Applies one tar member at a time to the target directory.
struct ApplyState {
    let root: String
    let mode: LayerUnpacker.Mode
    var entries = 0
    var skippedDevices = 0
    /// Paths this layer created (flatten mode: an opaque directory keeps only these).
    var createdThisLayer = Set<String>()

    init(root: String, mode: LayerUnpacker.Mode) {
        self.root = root
        self.mode = mode
    }

    static func refuse(_ member: String, _ why: String) -> RunnerError {
        RunnerError(.invalidArgument, "layer member \"\(member)\" \(why)", step: "unpack layer")
    }

    /// The member name relative to the layer root: leading "/" and "./" are dropped (contained),
    /// ".." anywhere is refused.
    static func clean(_ raw: String, member: String? = nil) throws(RunnerError) -> String {
        var parts: [Substring] = []
        for part in raw.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if let member { throw refuse(member, "is a hard link that escapes the layer with '..' (\(raw))") }
                throw refuse(raw, "escapes the layer with '..'")
            }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    /// Refuses a path whose parent directories include a symlink (which could point anywhere).
    func checkParents(_ relative: String, member: String) throws(RunnerError) {
        let parts = relative.split(separator: "/")
        var path = root
        for part in parts.dropLast() {
            path += "/" + part
            var st = stat()
            if lstat(path, &st) != 0 { return }  // does not exist yet: created as a real directory
            if (st.st_mode & S_IFMT) == S_IFLNK {
                throw Self.refuse(member, "would be written through the symlink \(path.dropFirst(root.count + 1))")
            }
            if (st.st_mode & S_IFMT) != S_IFDIR { throw Self.refuse(member, "has a parent that is not a directory") }
        }
    }

    /// mkdir -p inside the root, never through a symlink.
    func makeParents(_ relative: String, member: String) throws(RunnerError) {
        try checkParents(relative + "/x", member: member)
        var path = root
        for part in relative.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw .system("mkdir", errno: errno, "cannot create \(path)") }
        }
    }

    /// Applies one member. Returns false when the stream ended right after this member's data
    /// (no padding, no end marker): the member is complete and the layer is over.
    mutating func apply(_ entry: OpaquePointer, from tar: OpaquePointer, to disk: OpaquePointer, source: RawStream) throws(RunnerError) -> Bool {
        entries += 1
        let raw = fnr_archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        let name = try Self.clean(raw)
        if name.isEmpty {
            // The layer's root directory: take its mode and owner, nothing else.
            if fnr_archive_entry_filetype(entry) == entryTypeDirectory {
                chmod(root, fnr_archive_entry_perm(entry))
                lchown(root, uid_t(fnr_archive_entry_uid(entry)), gid_t(fnr_archive_entry_gid(entry)))
            }
            return true
        }
        let base = name.split(separator: "/").last.map(String.init) ?? name
        let parent = name.contains("/") ? String(name[..<name.lastIndex(of: "/")!]) : ""
        if base == ".wh..wh..opq" {
            try opaque(parent, member: raw)
            return true
        }
        if base.hasPrefix(".wh.") {
            try whiteout(parent, String(base.dropFirst(4)), member: raw)
            return true
        }

        let type = fnr_archive_entry_filetype(entry)
        if type == entryTypeCharDevice || type == entryTypeBlockDevice {
            skippedDevices += 1
            return true
        }
        try checkParents(name, member: raw)
        if let linkRaw = fnr_archive_entry_hardlink(entry).map({ String(cString: $0) }) {
            let link = try Self.clean(linkRaw, member: raw)
            if link.isEmpty { throw Self.refuse(raw, "is a hard link to the layer root") }
            try checkParents(link, member: raw)
            var st = stat()
            if lstat(root + "/" + link, &st) != 0 {
                throw Self.refuse(raw, "is a hard link to \"\(linkRaw)\", which the layer does not contain")
            }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw Self.refuse(raw, "is a hard link to a directory") }
            // libarchive would chmod/utime a hard link to a symlink by name, following the
            // symlink wherever it points: refuse, and never let a hard link carry data.
            if (st.st_mode & S_IFMT) == S_IFLNK { throw Self.refuse(raw, "is a hard link to a symlink") }
            fnr_archive_entry_set_size(entry, 0)
            fnr_archive_entry_set_hardlink(entry, root + "/" + link)
        }
        Self.dropTrustedXattrs(entry)
        fnr_archive_entry_set_pathname(entry, root + "/" + name)
        if fnr_archive_write_header(disk, entry) < ARCHIVE_WARN {
            throw Self.refuse(raw, "cannot be written: " + (fnr_archive_error_string(disk).map { String(cString: $0) } ?? "unknown error"))
        }
        var streamContinues = true
        let expected = fnr_archive_entry_size(entry)
        if expected > 0 && fnr_archive_entry_hardlink(entry) == nil {
            var block: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            var copied: la_int64_t = 0
            while true {
                let r = fnr_archive_read_data_block(tar, &block, &size, &offset)
                if r == ARCHIVE_EOF { break }
                if r < ARCHIVE_WARN {
                    // All data arrived and the stream simply ended where padding would start.
                    if copied == expected && source.sawEOF {
                        streamContinues = false
                        break
                    }
                    throw LayerUnpacker.archiveError(tar, "read member \"\(raw)\"")
                }
                copied = max(copied, offset + la_int64_t(size))
                if fnr_archive_write_data_block(disk, block, size, offset) < ARCHIVE_WARN {
                    throw LayerUnpacker.archiveError(disk, "write member \"\(raw)\"")
                }
            }
        }
        if fnr_archive_write_finish_entry(disk) < ARCHIVE_WARN {
            throw LayerUnpacker.archiveError(disk, "finish member \"\(raw)\"")
        }
        if mode == .flatten { createdThisLayer.insert(name) }
        return streamContinues
    }

    /// trusted.* attributes steer the kernel (overlayfs reads trusted.overlay.opaque, redirect,
    /// metacopy): an image must not set them; only our whiteout handling does.
    static func dropTrustedXattrs(_ entry: OpaquePointer) {
        guard fnr_archive_entry_xattr_reset(entry) > 0 else { return }
        var kept: [(String, [UInt8])] = []
        var dropped = false
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while fnr_archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK {
            guard let name else { continue }
            let n = String(cString: name)
            if n.hasPrefix("trusted.") {
                dropped = true
                continue
            }
            kept.append((n, value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []))
        }
        guard dropped else { return }
        fnr_archive_entry_xattr_clear(entry)
        for (n, v) in kept { v.withUnsafeBytes { fnr_archive_entry_xattr_add_entry(entry, n, $0.baseAddress, v.count) } }
    }

    /// `.wh.NAME`: NAME from the layers below is deleted.
    mutating func whiteout(_ parent: String, _ hidden: String, member: String) throws(RunnerError) {
        if hidden.isEmpty || hidden == "." || hidden == ".." { throw Self.refuse(member, "is a whiteout of nothing") }
        let relative = parent.isEmpty ? hidden : parent + "/" + hidden
        let path = root + "/" + relative
        switch mode {
        case .flatten:
            try checkParents(relative, member: member)
            try FileSystem.removeTree(path)
        case .overlayLayer:
            if !parent.isEmpty { try makeParents(parent, member: member) }
            try FileSystem.removeTree(path)
            if mknod(path, S_IFCHR | 0o000, 0) != 0 { throw .system("mknod", errno: errno, "cannot create whiteout \(relative)") }
        }
    }

    /// `.wh..wh..opq`: the directory hides everything the layers below have in it.
    mutating func opaque(_ parent: String, member: String) throws(RunnerError) {
        switch mode {
        case .flatten:
            let dir = parent.isEmpty ? root : root + "/" + parent
            try checkParents(parent + "/x", member: member)
            guard FileSystem.isDirectory(dir) else { return }
            for child in try FileSystem.list(dir) {
                let rel = parent.isEmpty ? child : parent + "/" + child
                if !createdThisLayer.contains(rel) { try FileSystem.removeTree(dir + "/" + child) }
            }
        case .overlayLayer:
            if !parent.isEmpty { try makeParents(parent, member: member) }
            let dir = parent.isEmpty ? root : root + "/" + parent
            if lsetxattr(dir, "trusted.overlay.opaque", "y", 1, 0) != 0 {
                throw .system("setxattr", errno: errno, "cannot mark \(parent.isEmpty ? "/" : parent) opaque")
            }
        }
    }
}
