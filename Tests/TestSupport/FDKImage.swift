import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// The real Python FDK in an OCI layout, built by scripts/make-fdk-image (debootstrap + pip +
/// umoci) once per machine and cached under /var/cache/fnrunner-tests.
public enum FDKImage {
    static let cache = "/var/cache/fnrunner-tests/fdk-v3"

    /// The layout directory, building it if needed (the script serialises builds with a lock).
    ///
    /// The build takes minutes on a new machine (scripts/test makes it before the tests start).
    /// It is awaited, not waited for on a cooperative thread: blocking two of them for that long
    /// stalled every test of the process, and the deadlines of those that were waiting for a
    /// process or a server passed without one check.
    public static func layout() async throws -> String {
        if FileSystem.exists(cache + "/layout/.complete") { return cache + "/layout" }
        try await Shell.run("\(Fixtures.packageRoot)/scripts/make-fdk-image \(cache) >/dev/null 2>&1")
        return cache + "/layout"
    }
}
