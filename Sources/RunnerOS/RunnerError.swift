#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one error type that crosses module boundaries in fnrunner.
///
/// It carries a stable `code` (for mapping to HTTP/gRPC statuses and exit codes at the edge),
/// a message written for the person reading it, and the failing step or syscall with its errno,
/// so that a failure deep in container setup is diagnosable from a single log line.
public struct RunnerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is; the edges map codes, never messages.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The caller asked for something malformed or out of range.
        public static let invalidArgument = Code("invalid_argument")
        /// A file, directory, cgroup or executable that was needed does not exist.
        public static let notFound = Code("not_found")
        /// The host cannot do what was asked (missing kernel feature, controller not delegated).
        public static let unsupported = Code("unsupported")
        /// A system call failed.
        public static let system = Code("system")
        /// Container setup failed between clone and exec.
        public static let containerStart = Code("container_start")
        /// The kernel did not reach the requested state in time.
        public static let timeout = Code("timeout")
        /// The object is in a state that does not allow the operation.
        public static let invalidState = Code("invalid_state")
        /// A registry refused the credentials, or wanted some and none were configured.
        public static let unauthorized = Code("unauthorized")
        /// A remote service failed or could not be reached (after retries).
        public static let unavailable = Code("unavailable")
        /// The image declares a VOLUME, which Fn refuses (400: the fn's image is wrong, not the
        /// function's run). Here, not in OCIImage, so the agent core maps it without the store.
        public static let imageHasVolume = Code("image_has_volume")
    }

    public var code: Code
    public var message: String
    /// The syscall or setup step that failed, when there is one ("mkdir", "mount /proc").
    public var step: String?
    /// The errno of the failing call, when there is one.
    public var errno: Int32?

    public init(_ code: Code, _ message: String, step: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.step = step
        self.errno = errno
    }

    /// An error for a failed system call, with errno's text appended.
    public static func system(_ step: String, errno: Int32, _ message: String) -> RunnerError {
        let code: Code = errno == ENOENT ? .notFound : .system
        return RunnerError(code, message, step: step, errno: errno)
    }

    public var description: String {
        var s = message
        if let step {
            s += " (\(step)"
            if let errno { s += ": \(Errno.describe(errno))" }
            s += ")"
        } else if let errno {
            s += " (\(Errno.describe(errno)))"
        }
        return s
    }
}

/// errno helpers.
public enum Errno {
    /// The current thread's errno.
    public static var current: Int32 { errno }

    /// "ENOENT: No such file or directory".
    public static func describe(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        return "\(name(code)): \(text)"
    }

    static func name(_ code: Int32) -> String {
        switch code {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case ESRCH: return "ESRCH"
        case EINTR: return "EINTR"
        case EIO: return "EIO"
        case EBADF: return "EBADF"
        case EAGAIN: return "EAGAIN"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case ENOTDIR: return "ENOTDIR"
        case EISDIR: return "EISDIR"
        case EINVAL: return "EINVAL"
        case ENOSPC: return "ENOSPC"
        case EROFS: return "EROFS"
        case ENOEXEC: return "ENOEXEC"
        case ENOSYS: return "ENOSYS"
        case ENOTEMPTY: return "ENOTEMPTY"
        case ELOOP: return "ELOOP"
        case ENAMETOOLONG: return "ENAMETOOLONG"
        case ECHILD: return "ECHILD"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        default: return "errno \(code)"
        }
    }
}
