import RunnerOS
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// An OCI layout of the busybox fixture whose `/usr/bin/python3` is a shell script: it plays a
/// bytecode build that misbehaves in the way its tag's MODE says, so the runner's side of the
/// build can be tested without trusting a real interpreter to be hostile.
///   - hostile: writes one good cache file and every kind a layer must not take;
///   - fail: exits 3; hang: never ends; nothing: writes nothing.
/// /app holds mod.py (0644), secret.py (0600), link.py (a link) and shipped.py with its cache
/// file already in the image; /app is mode 0751 with a fixed mtime.
enum ScriptedPythonImage {
    static let modes = ["hostile", "fail", "hang", "nothing"]

    static let python3 = """
        #!/bin/sh
        # argv: -B -c PROGRAM OUT LIMIT ROOTS...
        out=$4
        bb=/bin/busybox
        case "$MODE" in
        fail) echo "compile exploded" >&2; exit 3 ;;
        hang) exec sleep 3600 ;;
        nothing) echo '{"compiled": 0}'; exit 0 ;;
        esac
        $bb mkdir -p $out/app/__pycache__ $out/etc $out/app/new/__pycache__ $out/usr/bin/__pycache__
        echo good > $out/app/__pycache__/mod.cpython-311.pyc
        echo x > $out/app/__pycache__/ghost.cpython-311.pyc
        echo x > $out/app/__pycache__/secret.cpython-311.pyc
        echo x > $out/app/__pycache__/shipped.cpython-311.pyc
        echo x > $out/app/__pycache__/link.cpython-311.pyc.tmp
        $bb ln -s /etc/passwd $out/app/__pycache__/link.cpython-311.pyc
        echo x > $out/app/__pycache__/mod.pyc
        echo x > $out/app/mod.py
        echo x > $out/etc/passwd
        echo x > $out/app/new/__pycache__/a.cpython-311.pyc
        echo x > $out/usr/bin/__pycache__/python3.cpython-311.pyc
        echo '{"compiled": 1}'
        """

    static func layout() async throws -> String {
        let dir = "/tmp/fnrunner-test-fixtures-scripted-python-v1"
        if FileSystem.exists(dir + "/.complete") { return dir }
        let rootfs = try await Fixtures.busybox()
        let staging = dir + ".\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let b = staging + ".b/rootfs"
        try await Shell.run(
            """
            set -e; umoci init --layout \(staging) >/dev/null; umoci new --image \(staging):hostile >/dev/null
            umoci unpack --image \(staging):hostile \(staging).b >/dev/null; cp -a \(rootfs)/. \(b)/
            mkdir -p \(b)/usr/bin \(b)/app/__pycache__; chmod 0755 \(b)/app/__pycache__
            """)
        try FileSystem.create(b + "/usr/bin/python3", contents: python3 + "\n", mode: 0o755)
        try await Shell.run(
            """
            set -e
            echo 'x = 1' > \(b)/app/mod.py; echo 'key = 2' > \(b)/app/secret.py; chmod 0600 \(b)/app/secret.py
            echo 'y = 3' > \(b)/app/shipped.py; echo shipped > \(b)/app/__pycache__/shipped.cpython-311.pyc
            ln -s mod.py \(b)/app/link.py
            chmod 0751 \(b)/app; touch -d @1600000000 \(b)/app
            umoci repack --image \(staging):hostile \(staging).b >/dev/null; rm -rf \(staging).b
            umoci config --image \(staging):hostile --config.workingdir /app --config.env PATH=/usr/bin:/bin \\
              --config.env MODE=hostile --config.entrypoint /bin/true >/dev/null
            for m in fail hang nothing; do
              umoci config --image \(staging):hostile --tag $m --clear=config.env --config.env PATH=/usr/bin:/bin \\
                --config.env MODE=$m >/dev/null
            done
            umoci gc --layout \(staging) >/dev/null; touch \(staging)/.complete
            """)
        if rename(staging, dir) != 0 { try FileSystem.removeTree(staging) }
        return dir
    }
}
