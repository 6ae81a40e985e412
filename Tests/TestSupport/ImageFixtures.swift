import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// Image fixtures built offline by Tests/Fixtures/make_images.py (OCI layouts with gzip, zstd
/// and plain layers, whiteouts, a nested index, hostile layers), once per content version.
public enum ImageFixtures {
    /// A host directory that hostile layers try to write into through symlinks; it must stay empty.
    public static let hostSentinel = "/tmp/fnrunner-test-host-sentinel"

    public static func directory() async throws -> String {
        let dir = Fixtures.base + "/images-v3"
        if FileSystem.exists(dir + "/done") { return dir }
        try FileSystem.makeDirectories(hostSentinel)
        try FileSystem.create(hostSentinel + "/file", contents: "sentinel\n", mode: 0o644)
        let staging = Fixtures.base + "/.images-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try await Shell.run("python3 \(Fixtures.packageRoot)/Tests/Fixtures/make_images.py \(staging) /bin/busybox \(hostSentinel) >/dev/null")
        try FileSystem.create(staging + "/done", contents: "")
        if rename(staging, dir) != 0 { try FileSystem.removeTree(staging) }
        return dir
    }

    public static func hostile(_ name: String) async throws -> String { try await directory() + "/hostile/" + name }

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

extension ImageFixtures {
    /// An OCI layout of the busybox fixture: tag "1" runs /bin/hello-stream, tag "false" exits at
    /// once, tag "sh" runs the shell script in its SCRIPT variable (set it in the fn's config),
    /// tag "never" runs but never listens, tag "root-sh" is "sh" with USER 0:0.
    public static func helloStreamLayout() async throws -> String {
        let dir = Fixtures.base + "/hello-stream-layout-v4"
        if FileSystem.exists(dir + "/.complete") { return dir }
        let rootfs = try await Fixtures.busybox()
        let staging = Fixtures.base + "/.hello-stream-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try await Shell.run(
            """
            set -e; umoci init --layout \(staging) >/dev/null; umoci new --image \(staging):1 >/dev/null
            umoci unpack --image \(staging):1 \(staging).b >/dev/null; cp -a \(rootfs)/. \(staging).b/rootfs/
            umoci repack --image \(staging):1 \(staging).b >/dev/null; rm -rf \(staging).b
            umoci config --image \(staging):1 --config.entrypoint /bin/hello-stream >/dev/null
            umoci config --image \(staging):1 --tag false --clear=config.entrypoint --config.entrypoint /bin/false >/dev/null
            umoci config --image \(staging):1 --tag sh --clear=config.entrypoint --config.entrypoint /bin/sh \\
              --config.entrypoint -c --config.entrypoint 'eval "$SCRIPT"' >/dev/null
            umoci config --image \(staging):1 --tag never --clear=config.entrypoint --config.entrypoint /bin/sleep \\
              --config.entrypoint 3600 >/dev/null
            umoci config --image \(staging):sh --tag root-sh --config.user 0:0 >/dev/null
            umoci gc --layout \(staging) >/dev/null; touch \(staging)/.complete
            """)
        if rename(staging, dir) != 0 { try FileSystem.removeTree(staging) }
        return dir
    }
}
