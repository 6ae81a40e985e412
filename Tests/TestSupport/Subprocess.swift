import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A child process for CLI tests (the fnrunner binary), with stdout and stderr in files.
public final class Subprocess: @unchecked Sendable {
    public let pid: pid_t
    public let stdoutPath: String
    public let stderrPath: String
    private var status: Int32?

    /// The built fnrunner executable (FNRUNNER_BIN overrides).
    public static var fnrunnerPath: String {
        if let p = getenv("FNRUNNER_BIN") { return String(cString: p) }
        return Fixtures.packageRoot + "/.build/debug/fnrunner"
    }

    /// Starts `argv` with this process's environment plus `environment`.
    public init(_ argv: [String], environment: [String: String] = [:]) throws {
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        stdoutPath = "/tmp/fnrunner-test-out-\(tag)"
        stderrPath = "/tmp/fnrunner-test-err-\(tag)"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Nothing else of this process: NIO's sockets are not close-on-exec, and a child that
        // kept another test's listening socket (a server there ended, its port picked again by a
        // registry here) once answered a readiness check with a connection nobody accepted.
        _ = spawnActionsCloseFrom(&actions, 3)
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var child: pid_t = 0
        var env: [UnsafeMutablePointer<CChar>?] = []
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "="), environment[String(text[..<eq])] == nil { env.append(strdup(text)) }
            p += 1
        }
        for (k, v) in environment { env.append(strdup("\(k)=\(v)")) }
        env.append(nil)
        defer { for e in env { free(e) } }
        // The child starts as a service manager would start it: no signal blocked, none
        // ignored. The test process blocks most signals on its threads (a child would inherit
        // that, and a blocked SIGTERM would never end it).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        var all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let rc = posix_spawn(&child, argv[0], &actions, &attributes, &cArgs, &env)
        if rc != 0 { throw ShellError(command: argv.joined(separator: " "), status: rc) }
        pid = child
    }

    /// The node namespace every spawned `fnrunner` gets unless its test made one: it never
    /// exists, so nothing can put a bridge into the machine's own network.
    public static let noNodeNamespace = "/run/netns/fnrunner-tests-have-no-such-namespace"

    /// Runs `fnrunner` with arguments to completion.
    /// The sandbox pool is on or off as for in-process tests (Host.sandboxPoolSize) unless
    /// `environment` says otherwise.
    public static func fnrunner(_ args: [String], environment: [String: String] = [:]) throws -> Subprocess {
        var environment = environment
        if environment["FN_SANDBOX_POOL_SIZE"] == nil { environment["FN_SANDBOX_POOL_SIZE"] = String(Host.sandboxPoolSize) }
        // Tests never touch the machine's own network: a bridge goes only into a namespace a
        // test made. Without one, a bridge start fails on a namespace that does not exist
        // instead of falling back to the runner's own (the host's).
        if environment["FN_FUNCTION_NETWORK"] == nil { environment["FN_FUNCTION_NETWORK"] = "none" }
        if environment["FN_FUNCTION_NODE_NETNS"] == nil { environment["FN_FUNCTION_NODE_NETNS"] = noNodeNamespace }
        return try Subprocess([fnrunnerPath] + args, environment: environment)
    }

    /// Waits for exit; returns the shell-style status (128 + signal when killed).
    @discardableResult
    @available(*, noasync, message: "blocks a cooperative thread: await exit() instead")
    public func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let s: Int32 = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        status = s
        return s
    }

    /// Waits for exit from a `defer` in async code, where `await` cannot go. It blocks its
    /// thread, so only for a process already told to end.
    @discardableResult
    public func reap() -> Int32 { wait() }

    /// Waits for exit without holding a thread: `wait()` blocks one, and on Swift's cooperative
    /// pool (two threads here) two CLI runs of seconds each would stall every other test.
    @discardableResult
    public func exit() async -> Int32 {
        if let status { return status }
        // nil: not a child this process can wait for; never reported as success.
        guard let raw = await ChildExit.wait(pid: pid) else { return -1 }
        let s: Int32 = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        status = s
        return s
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    public var stdout: String { (try? FileSystem.read(stdoutPath)) ?? "" }
    public var stderr: String { (try? FileSystem.read(stderrPath)) ?? "" }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = wait()
        }
        unlink(stdoutPath)
        unlink(stderrPath)
    }
}

/// glibc's posix_spawn_file_actions_addclosefrom_np (2.34 and later), which the Glibc module
/// does not export: the child closes every descriptor from `from` on before it execs.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnActionsCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32
