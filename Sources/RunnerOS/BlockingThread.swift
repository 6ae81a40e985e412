#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs long blocking work (a registry download, a layer unpack) on a thread of its own, so it
/// never occupies one of the few threads of Swift's cooperative pool.
public enum BlockingThread {
    private final class Work {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws(RunnerError) -> T) async throws(RunnerError) -> T {
        let result: Result<T, RunnerError> = await withCheckedContinuation { (c: CheckedContinuation<Result<T, RunnerError>, Never>) in
            let work = Work {
                do throws(RunnerError) { c.resume(returning: .success(try body())) } catch { c.resume(returning: .failure(error)) }
            }
            let raw = Unmanaged.passRetained(work).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, raw)
            if rc != 0 {
                Unmanaged<Work>.fromOpaque(raw).release()
                c.resume(returning: .failure(RunnerError(.system, "cannot start a worker thread", step: "pthread_create", errno: rc)))
            } else {
                pthread_detach(thread)
            }
        }
        return try result.get()
    }
}
