import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// Image fixtures built offline by Tests/Fixtures/make_images.py (OCI layouts with gzip, zstd
/// and plain layers, whiteouts, a nested index, hostile layers), once per content version.
public enum ImageFixtures {
    /// A host directory that hostile layers try to write into through symlinks; it must stay empty.
    public static let hostSentinel = "/tmp/fnrunner-test-host-sentinel"

    public static func directory() throws -> String {
        let dir = Fixtures.base + "/images-v3"
        if FileSystem.exists(dir + "/done") { return dir }
        try FileSystem.makeDirectories(hostSentinel)
        try FileSystem.create(hostSentinel + "/file", contents: "sentinel\n", mode: 0o644)
        let staging = Fixtures.base + "/.images-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Shell.run("python3 \(Fixtures.packageRoot)/Tests/Fixtures/make_images.py \(staging) /bin/busybox \(hostSentinel) >/dev/null")
        try FileSystem.create(staging + "/done", contents: "")
        if rename(staging, dir) != 0 { try FileSystem.removeTree(staging) }
        return dir
    }

    public static func hostile(_ name: String) throws -> String { try directory() + "/hostile/" + name }

    /// Compares two trees (compare_trees.py); returns its report and whether they are identical.
    public static func compare(_ a: String, _ b: String) throws -> (identical: Bool, report: String) {
        let cmd = "python3 \(Fixtures.packageRoot)/Tests/Fixtures/compare_trees.py \(a) \(b)"
        do {
            return (true, try Shell.output(cmd))
        } catch {
            return (false, (try? Shell.output(cmd + " || true")) ?? "\(error)")
        }
    }
}
