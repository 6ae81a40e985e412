import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// The real Python FDK in an OCI layout, built by scripts/make-fdk-image (debootstrap + pip +
/// umoci) once per machine and cached under /var/cache/fnrunner-tests.
public enum FDKImage {
    static let cache = "/var/cache/fnrunner-tests/fdk-v3"

    /// The layout directory, building it if needed (serialised across test processes by a lock).
    public static func layout() throws -> String {
        if FileSystem.exists(cache + "/layout/.complete") { return cache + "/layout" }
        try FileSystem.makeDirectories(cache)
        try Shell.run("flock \(cache).lock \(Fixtures.packageRoot)/scripts/make-fdk-image \(cache) >/dev/null 2>&1")
        return cache + "/layout"
    }
}
