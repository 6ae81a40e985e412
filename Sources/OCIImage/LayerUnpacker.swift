import CArchive
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Unpacks one layer blob (tar, gzip or zstd; libarchive) into a directory, safely.
///
/// Safety: names are made relative, `..` anywhere is refused, no path is ever created or
/// written through a symlink (libarchive's secure-symlinks check plus our own for hardlink
/// targets and whiteouts), device nodes are skipped; every refusal names the member.
/// The uncompressed stream is hashed on the way through, so the diff ID is checked in the same
/// single pass. A stream that ends right after the last member's data (no padding, no end
/// marker, as some buggy packers write) is accepted, as Go's archive/tar does.
public struct LayerUnpacker: Sendable {
    public enum Mode: Sendable {
        /// A layer of its own for overlayfs: whiteouts become 0/0 character devices and opaque
        /// directories get `trusted.overlay.opaque=y`, the kernel's own format.
        case overlayLayer
        /// Applied onto the layers below in the same directory: whiteouts delete.
        case flatten
    }

    public struct Result: Sendable {
        public var diffID: Digest
        public var entries: Int
        public var skippedDevices: Int
    }

    public init() {}

    public func unpack(blob: String, into target: String, mode: Mode) throws(RunnerError) -> Result {
        let root = try Self.realDirectory(target)
        let source = try RawStream(path: blob)
        defer { source.close() }
        guard let tar = fnr_archive_read_new() else { throw RunnerError(.system, "archive_read_new failed", step: "unpack layer") }
        defer { fnr_archive_read_free(tar) }
        fnr_archive_read_support_format_tar(tar)
        fnr_archive_read_support_format_gnutar(tar)
        let context = Unmanaged.passUnretained(source).toOpaque()
        if fnr_archive_read_open(tar, context, nil, RawStream.readCallback, nil) != ARCHIVE_OK {
            throw Self.archiveError(tar, "open layer \(blob)")
        }
        guard let disk = fnr_archive_write_disk_new() else { throw RunnerError(.system, "archive_write_disk_new failed", step: "unpack layer") }
        defer { fnr_archive_write_free(disk) }
        fnr_archive_write_disk_set_options(
            disk,
            ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR
                | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT)

        var state = ApplyState(root: root, mode: mode)
        var entryPointer: OpaquePointer?
        var lastDataComplete = true
        while true {
            let rc = fnr_archive_read_next_header(tar, &entryPointer)
            if rc == ARCHIVE_EOF { break }
            if rc == ARCHIVE_FATAL && state.entries > 0 && lastDataComplete && source.sawEOF
                && (fnr_archive_error_string(tar).map { String(cString: $0).contains("Truncated") } ?? false)
            {
                break  // the stream ended where the next header would start: accept, like Go
            }
            if rc < ARCHIVE_WARN { throw Self.archiveError(tar, "read layer \(blob)") }
            guard let entry = entryPointer else { continue }
            lastDataComplete = false
            let more = try state.apply(entry, from: tar, to: disk, source: source)
            lastDataComplete = true
            if !more { break }
        }
        if fnr_archive_write_close(disk) != ARCHIVE_OK { throw Self.archiveError(disk, "finish layer \(blob)") }
        try source.drain()
        return Result(diffID: source.hasher.finish(), entries: state.entries, skippedDevices: state.skippedDevices)
    }

    static func archiveError(_ a: OpaquePointer, _ what: String) -> RunnerError {
        let text = fnr_archive_error_string(a).map { String(cString: $0) } ?? "unknown error"
        let err = fnr_archive_errno(a)
        return RunnerError(.invalidArgument, "cannot \(what): \(text)", step: "unpack layer", errno: err > 0 ? err : nil)
    }

    /// The canonical path of an existing directory (no symlinks in it, as the checks require).
    static func realDirectory(_ path: String) throws(RunnerError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw .system("realpath", errno: errno, "unpack target \(path) is not usable")
        }
        defer { free(resolved) }
        let s = String(cString: resolved)
        if !FileSystem.isDirectory(s) {
            throw RunnerError(.invalidArgument, "unpack target \(path) is not a directory", step: "unpack layer")
        }
        return s
    }
}

/// The decompressed layer stream, read through libarchive's filters (gzip, zstd, none) and
/// hashed as the tar reader pulls it.
final class RawStream {
    let reader: OpaquePointer
    let hasher = SHA256Hasher()
    let buffer: UnsafeMutableRawPointer
    let bufferSize = 1 << 17
    var sawEOF = false
    var failure: RunnerError?

    init(path: String) throws(RunnerError) {
        guard let r = fnr_archive_read_new() else { throw RunnerError(.system, "archive_read_new failed", step: "unpack layer") }
        reader = r
        buffer = malloc(bufferSize)!
        // Only the compressions layers use; filter_all would also run external programs.
        fnr_archive_read_support_filter_gzip(r)
        fnr_archive_read_support_filter_zstd(r)
        fnr_archive_read_support_filter_none(r)
        fnr_archive_read_support_format_raw(r)
        var entry: OpaquePointer?
        if fnr_archive_read_open_filename(r, path, 1 << 16) != ARCHIVE_OK || fnr_archive_read_next_header(r, &entry) != ARCHIVE_OK {
            let e = LayerUnpacker.archiveError(r, "open layer blob \(path)")
            fnr_archive_read_free(r)
            free(buffer)
            throw e
        }
    }

    func close() {
        fnr_archive_read_free(reader)
        free(buffer)
    }

    func next() -> Int {
        let n = fnr_archive_read_data(reader, buffer, bufferSize)
        if n > 0 { hasher.update(UnsafeRawBufferPointer(start: buffer, count: n)) }
        if n == 0 { sawEOF = true }
        if n < 0 { failure = LayerUnpacker.archiveError(reader, "decompress layer") }
        return n
    }

    /// Hashes whatever follows the tar end marker, so the diff ID covers the whole stream.
    func drain() throws(RunnerError) {
        while !sawEOF {
            if next() < 0 { throw failure! }
        }
    }

    static let readCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int = { _, context, out in
        let stream = Unmanaged<RawStream>.fromOpaque(context!).takeUnretainedValue()
        let n = stream.next()
        out?.pointee = UnsafeRawPointer(stream.buffer)
        return n
    }
}
