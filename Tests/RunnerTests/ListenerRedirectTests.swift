import NativeRuntime
import Runner
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A function's iofs can never send the runner to a socket on the host: each hostile listener
/// fails the start with a clear message, and a root-only host socket never sees a connection.
@Suite(.enabled(if: Host.canRunContainers && Host.hasFreezer, "needs root, cgroups and a freezer"))
struct ListenerRedirectTests {
    /// A listening unix socket in a 0700 directory, as a host daemon's API socket would be.
    final class HostSocket {
        let directory = "/tmp/fnrunner-secret-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var path: String { directory + "/secret.sock" }
        let fd: Int32

        init() throws {
            try FileSystem.makeDirectories(directory, mode: 0o700)
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array((directory + "/secret.sock").utf8)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0, listen(fd, 16) == 0, chmod(path, 0o600) == 0 else { throw RunnerError(.system, "host socket", errno: errno) }
        }

        /// Whether anything connected (a connection waits in the backlog until accepted).
        var wasConnected: Bool {
            let c = accept(fd, nil, nil)
            if c >= 0 { close(c) }
            return c >= 0
        }

        deinit {
            close(fd)
            try? FileSystem.removeTree(directory)
        }
    }

    func hostileFunction(_ script: String, secret: String) -> FunctionDefinition {
        FunctionDefinition(
            appID: "app1", appName: "myapp", fnID: "fn1", fnName: "hostile", image: "fn-test/hello-stream:sh",
            fnConfig: ["SCRIPT": script, "SECRET": secret])
    }

    /// Starts a hot container running `script` and returns the start's error (nil if it started).
    func startError(_ script: String, _ host: HostSocket) async throws -> RunnerError? {
        var failure: RunnerError?
        try await RunnerHarness.withImageStore("redirect", images: [(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:sh")]) {
            sandbox, store, env in
            let driver = RunnerHarness.driver(sandbox, store, env)
            do {
                let hot = try await driver.startHot(RunnerHarness.task(hostileFunction(script, secret: host.path), name: "hostile", startTimeout: .seconds(10)))
                await hot.close()
            } catch let error as RunnerError {
                failure = error
            }
            #expect(sandbox.liveContainers.isEmpty)
        }
        return failure
    }

    static let hostile: [(script: String, refusal: String)] = [
        // The reported attack: a same-directory link to a second link that leaves iofs.
        ("ln -s $SECRET /tmp/iofs/phony; ln -s phony /tmp/iofs/lsnr.sock; exec sleep 100000", "phony, which is a second link"),
        ("ln -s $SECRET /tmp/iofs/lsnr.sock; exec sleep 100000", "which is not a file in the same directory"),
        ("ln -s ../..$SECRET /tmp/iofs/lsnr.sock; exec sleep 100000", "which is not a file in the same directory"),
        ("ln -s $SECRET /tmp/iofs/b; ln -s b /tmp/iofs/a; ln -s a /tmp/iofs/lsnr.sock; exec sleep 100000", "a, which is a second link"),
        ("mkfifo /tmp/iofs/f; ln -s f /tmp/iofs/lsnr.sock; exec sleep 100000", "f, which is not a unix socket"),
        ("echo x > /tmp/iofs/lsnr.sock; exec sleep 100000", "lsnr.sock is not a unix socket"),
        ("mkdir /tmp/iofs/lsnr.sock; exec sleep 100000", "lsnr.sock is not a unix socket"),
        ("mkdir /tmp/iofs/d; ln -s d /tmp/iofs/lsnr.sock; exec sleep 100000", "d, which is not a unix socket"),
    ]

    @Test(arguments: 0..<hostile.count)
    func aHostileListenerFailsTheStartAndTheHostSocketSeesNothing(_ index: Int) async throws {
        let host = try HostSocket()
        let (script, refusal) = Self.hostile[index]
        let error = try await startError(script, host)
        #expect(error?.code == .containerInit, "\(script): \(String(describing: error))")
        #expect(error?.message.contains(refusal) == true, "\(script): \(String(describing: error))")
        #expect(!host.wasConnected, "the host socket was reached by: \(script)")
    }

    @Test func aListenerSwappedForAHostLinkAfterTheStartIsNeverFollowed() async throws {
        let host = try HostSocket()
        let script = """
            /bin/hello-stream &
            # Once the runner is connected (the accepted socket shows as connected, state 03):
            until grep phonylsnr /proc/net/unix | grep -q ' 03 '; do sleep 0.01; done
            rm -f /tmp/iofs/lsnr.sock /tmp/iofs/phonylsnr.sock
            ln -s $SECRET /tmp/iofs/phonylsnr.sock; ln -s phonylsnr.sock /tmp/iofs/lsnr.sock; touch /tmp/iofs/swapped; wait
            """
        let f = hostileFunction(script, secret: host.path)
        try await RunnerHarness.withImageStore("swap", images: [(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:sh")]) {
            sandbox, store, env in
            let hot = try await RunnerHarness.driver(sandbox, store, env).startHot(RunnerHarness.task(f, name: "swap"))
            try await Task.sleep(for: .milliseconds(800))
            for i in 0..<3 {
                let r = try await hot.call(RunnerHarness.request("swap\(i)"), timeout: .seconds(5), maxBodyBytes: 0, log: CallLog())
                #expect(RunnerHarness.text(r) == "Hello swap\(i)")
            }
            await hot.close()
        }
        #expect(!host.wasConnected)
    }

    @Test func aSocketBoundBeforeItListensIsWaitedForNotRefused() async throws {
        let f = FunctionDefinition(
            appID: "app1", appName: "myapp", fnID: "fn1", fnName: "late", image: "fn-test/hello-stream:1",
            fnConfig: ["HELLO_BIND_DIRECT": "1", "HELLO_LISTEN_DELAY_MS": "300"])
        try await RunnerHarness.withImageStore("late", images: [(try await ImageFixtures.helloStreamLayout(), "fn-test/hello-stream:1")]) {
            sandbox, store, env in
            let hot = try await RunnerHarness.driver(sandbox, store, env).startHot(RunnerHarness.task(f, name: "late"))
            let r = try await hot.call(RunnerHarness.request("late"), timeout: .seconds(5), maxBodyBytes: 0, log: CallLog())
            #expect(RunnerHarness.text(r) == "Hello late")
            await hot.close()
        }
    }
}

/// Fn's check of the FDK's listener, on real files in a directory the test owns.
struct ListenerSocketTests {
    @Test func aSocketOrASameDirectoryLinkToOneIsAcceptedAndAnythingElseRefused() throws {
        let dir = "/tmp/fnrunner-listener-\(getpid())"
        try FileSystem.removeTree(dir)
        try FileSystem.makeDirectories(dir, mode: 0o755)
        defer { try? FileSystem.removeTree(dir) }
        try Shell.run(
            """
            cd \(dir) && python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.bind("phony.sock")'
            ln -s phony.sock good-link; ln -s ../x/phony.sock escaping-link; ln -s \(dir)/phony.sock absolute-link
            ln -s missing dangling-link; touch regular; mkdir directory; mkfifo fifo; ln -s fifo fifo-link
            ln -s good-link chain-link; ln -s regular regular-link; ln -s directory directory-link; ln -s .. dotdot-link
            """)
        try HotContainer.checkListener(directory: dir, name: "phony.sock")
        try HotContainer.checkListener(directory: dir, name: "good-link")
        for bad in [
            "escaping-link", "absolute-link", "dangling-link", "regular", "directory", "absent", "fifo", "fifo-link", "chain-link",
            "regular-link", "directory-link", "dotdot-link",
        ] {
            #expect(throws: RunnerError.self, "\(bad) must be refused") { try HotContainer.checkListener(directory: dir, name: bad) }
        }
    }
}
