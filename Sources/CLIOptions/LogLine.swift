#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes one log line with a single write(2) where the descriptor takes it whole (a pipe takes
/// up to PIPE_BUF bytes at once), so the lines of concurrent loggers do not mix.
enum LogLine {
    static func write(_ line: String, to fd: Int32) {
        var line = line
        line.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                #if canImport(Glibc)
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                #else
                let n = Musl.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                #endif
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
