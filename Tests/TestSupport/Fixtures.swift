import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Rootfs directories for tests, built once per content version under /tmp and reused:
/// busybox-static (from Debian) plus `probe` and `hello-stream` (an http-stream function), static
/// C programs from Tests/Fixtures.
public enum Fixtures {
    /// Changes with the C sources, so a machine that built the fixtures before an edit builds
    /// them again instead of testing a stale binary.
    static let version: String = {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for name in ["probe.c", "hello_stream.c"] {
            let bytes = Array(((try? FileSystem.read(packageRoot + "/Tests/Fixtures/" + name)) ?? name).utf8)
            for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        return "v3-" + String(hash, radix: 16)
    }()
    static let base = "/tmp/fnrunner-test-fixtures-" + version

    /// The package's root directory, found from this file's path.
    public static var packageRoot: String {
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)  // Tests/TestSupport/Fixtures.swift
        return "/" + parts.joined(separator: "/")
    }

    static let applets = [
        "sh", "true", "false", "cat", "echo", "sleep", "ls", "id", "hostname", "ps", "mount", "touch", "dd", "seq",
        "grep", "wc", "head", "ip", "unshare", "env", "pwd", "stat", "nc", "nslookup", "printf",
    ]

    /// A complete rootfs: /bin with busybox applets and probe, and the proc/dev/sys/tmp mount points.
    public static func busybox() async throws -> String { try await build("busybox", mountPoints: true) }

    /// The same without mount points, as many OCI images come: the sandbox must lay its skeleton over it.
    public static func busyboxWithoutMountPoints() async throws -> String { try await build("busybox-bare", mountPoints: false) }

    private static func build(_ name: String, mountPoints: Bool) async throws -> String {
        let dir = base + "/" + name
        if FileSystem.exists(dir + "/bin/probe") { return dir }
        try FileSystem.makeDirectories(base)
        let staging = base + "/.\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(staging + "/bin")
        try FileSystem.makeDirectories(staging + "/etc")
        if mountPoints {
            for d in ["proc", "dev", "sys", "tmp"] { try FileSystem.makeDirectory(staging + "/" + d) }
        }
        try await Shell.run("cp /bin/busybox \(staging)/bin/busybox")
        for applet in applets { symlink("busybox", staging + "/bin/" + applet) }
        try await Shell.run("cc -static -O2 -o \(staging)/bin/probe \(packageRoot)/Tests/Fixtures/probe.c 2>/dev/null")
        try await Shell.run("cc -static -O2 -o \(staging)/bin/hello-stream \(packageRoot)/Tests/Fixtures/hello_stream.c 2>/dev/null")
        try FileSystem.create(staging + "/etc/not-executable", contents: "#!/bin/sh\necho no\n", mode: 0o644)
        // As image builders leave them: files a runner lays its own over.
        try FileSystem.create(staging + "/etc/hosts", contents: "# from the image\n")
        try FileSystem.create(staging + "/etc/resolv.conf", contents: "# from the image\n")
        if rename(staging, dir) != 0 {
            // Another test process won the race: use its copy.
            try FileSystem.removeTree(staging)
        }
        return dir
    }
}
