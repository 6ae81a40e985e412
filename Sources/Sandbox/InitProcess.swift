import CRunnerShim
import RunnerOS

/// fnrunner-init, the PID 1 that reaps a function's orphans and passes on its signals (Fn runs
/// every function under docker-init for the same reason).
///
/// Its bytes are built into the runner (the InitImage plugin) and held in one sealed memfd
/// for the life of the process: each container's child execs it with execveat, so it needs no
/// file on the host or in the image, and nothing can change it between containers.
enum InitProcess {
    static let image: Result<Int32, RunnerError> = {
        let fd = initImage.withUnsafeBytes { rn_sealed_executable_memfd("fnrunner-init", $0.baseAddress, $0.count) }
        if fd < 0 {
            return .failure(.system("memfd_create", errno: -fd, "cannot hold fnrunner-init in a sealed executable memfd"))
        }
        return .success(fd)
    }()

    /// The descriptor a container's child execs, loaded on first use.
    static func descriptor() throws(RunnerError) -> Int32 { try image.get() }
}
