import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Fn's check of an FDK's listener: a unix socket, or a relative symlink to one in the same
/// directory (fdk-go binds a "phony" socket, sets its mode, then links lsnr.sock to it, so the
/// name appears only when the socket is ready). Anything else fails the container's start.
enum ListenerSocket {
    static func check(directory: String, name: String) throws(RunnerError) {
        let path = directory + "/" + name
        var st = stat()
        if lstat(path, &st) != 0 {
            throw RunnerError(.containerInit, "cannot stat the listener \(name)", step: "check listener", errno: errno)
        }
        var target = path
        if (st.st_mode & S_IFMT) == S_IFLNK {
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlink(path, &buffer, buffer.count - 1)
            if n < 0 { throw RunnerError(.containerInit, "cannot read the listener link \(name)", step: "check listener", errno: errno) }
            let link = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link.isEmpty || link.contains("/") || link == "." || link == ".." {
                throw RunnerError(
                    .containerInit, "the listener \(name) links to \(link), which is not a file in the same directory",
                    step: "check listener")
            }
            target = directory + "/" + link
            if stat(target, &st) != 0 {
                throw RunnerError(.containerInit, "the listener \(name) links to \(link), which does not exist", step: "check listener", errno: errno)
            }
        }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw RunnerError(.containerInit, "the listener \(name) is not a unix socket", step: "check listener")
        }
    }
}
