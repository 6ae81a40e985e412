import CRunnerShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A detached pthread of its own for a loop that blocks forever in the kernel (epoll_wait), which
/// must never occupy a thread of Swift's cooperative pool.
public enum DedicatedThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts `body` on a new detached thread; `what` names it in the (fatal) failure message,
    /// and `name` (at most 15 bytes) in `top -H` and /proc/PID/task/*/comm.
    public static func start(_ what: String, name: String, _ body: @escaping () -> Void) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Body({
            setName(name)
            body()
        })).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, context)
        precondition(rc == 0, "pthread_create for \(what) failed: \(rc)")
        pthread_detach(thread)
    }

    /// Names the calling thread (truncated to the kernel's 15 bytes).
    public static func setName(_ name: String) {
        rn_set_thread_name(name)
    }
}
