#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension String {
    /// The text of a C buffer up to its first NUL (all of it without one), as UTF-8 with
    /// invalid bytes replaced: what a kernel or C library wrote into a fixed-size array.
    public init(nulTerminated buffer: some Collection<CChar>) {
        self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// This machine's host name, or nil when it has none (an empty name, or gethostname failed).
/// Read by syslog headers and, as Fn does, given to bridge containers.
public enum HostName {
    public static let current: String? = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        let name = String(nulTerminated: buffer)
        return name.isEmpty ? nil : name
    }()
}
