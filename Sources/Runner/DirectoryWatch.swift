import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An inotify watch on a directory, set up before a container starts so that the FDK's socket
/// is seen the moment it is created, without polling the file system.
final class DirectoryWatch: @unchecked Sendable {
    private let fd: Int32

    init(_ directory: String) throws(RunnerError) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0 { throw .system("inotify_init1", errno: errno, "cannot watch \(directory)") }
        if inotify_add_watch(fd, directory, UInt32(IN_CREATE | IN_MOVED_TO)) < 0 {
            let e = errno
            Glibc.close(fd)
            throw .system("inotify_add_watch", errno: e, "cannot watch \(directory)")
        }
    }

    deinit { Glibc.close(fd) }

    /// Whether a create or move-in of `name` was reported since the last look.
    func sawCreation(of name: String) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var seen = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return seen }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= n {
                let length = buffer.withUnsafeBytes { Int($0.load(fromByteOffset: offset, as: inotify_event.self).len) }
                let nameBytes = buffer[(offset + header)..<min(n, offset + header + length)].prefix { $0 != 0 }
                if String(decoding: nameBytes, as: UTF8.self) == name { seen = true }
                offset += header + length
            }
        }
    }

    /// Waits until something happens in the directory or `upToMillis` pass, on a worker thread.
    func wait(upToMillis ms: Int32) async {
        let fd = self.fd
        _ = try? await BlockingThread.run { () throws(RunnerError) -> Int32 in
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&p, 1, ms)
        }
    }
}
