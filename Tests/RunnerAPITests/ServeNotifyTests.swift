import Foundation
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A unix datagram socket standing in for systemd's NOTIFY_SOCKET: what `fnrunner serve`
/// tells a `Type=notify` unit, read as systemd reads it.
final class NotifySocket: @unchecked Sendable {
    let path: String
    let fd: Int32
    private(set) var received: [String] = []

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RunnerError.system("socket", errno: errno, "test notify socket") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw RunnerError.system("bind", errno: errno, "test notify socket \(path)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads datagrams until one contains `line` as a line of its own, for up to `seconds`.
    func waitFor(_ line: String, seconds: Double = 30) -> Bool {
        if received.contains(where: { $0.split(separator: "\n").contains(Substring(line)) }) { return true }
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { continue }
            let message = String(decoding: buffer[0..<n], as: UTF8.self)
            received.append(message)
            if message.split(separator: "\n").contains(Substring(line)) { return true }
        }
        return false
    }

    deinit {
        close(fd)
        unlink(path)
    }
}

@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct ServeNotifyTests {
    @Test func serveTellsItsServiceManagerItIsReadyAliveAndStopping() async throws {
        try await withHelloStreamData("notify") { env, data in
            let notify = try NotifySocket(path: env.stateDirectory + "-notify.sock")
            let port = try Host.freeLoopbackPort()
            let (server, c) = try await ServeHarness.start(
                env, data: data, port: port,
                environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000", "FN_SANDBOX_POOL_SIZE": "2"])
            #expect(notify.waitFor("READY=1"), "\(notify.received) \(server.stderr)")
            let ready = notify.received.first { $0.contains("READY=1") } ?? ""
            #expect(ready.contains("STATUS=serving http 127.0.0.1:\(port)") && ready.contains("2 sandboxes ready"), "\(ready)")
            // A call is served while the watchdog is pinged at half of WATCHDOG_USEC.
            let fnID = try await ServeHarness.deploy(c, app: "notified", fn: "hello", memory: 64)
            #expect(try await c.send("POST", "/invoke/\(fnID)", body: Array("x".utf8)).status == 200)
            #expect(notify.waitFor("WATCHDOG=1", seconds: 30), "\(notify.received)")
            #expect(!notify.received.contains { $0.contains("STOPPING=1") })
            server.signal(SIGTERM)
            #expect(notify.waitFor("STOPPING=1"), "\(notify.received)")
            #expect(await server.exit() == 0, "\(server.stderr)")
        }
    }

    @Test func aWatchdogMeantForAnotherProcessIsNotPinged() async throws {
        try await withHelloStreamData("notify2") { env, data in
            let notify = try NotifySocket(path: env.stateDirectory + "-notify.sock")
            let (server, _) = try await ServeHarness.start(
                env, data: data, port: try Host.freeLoopbackPort(),
                environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"])
            #expect(notify.waitFor("READY=1"), "\(notify.received) \(server.stderr)")
            #expect(!notify.waitFor("WATCHDOG=1", seconds: 1), "\(notify.received)")
            server.signal(SIGTERM)
            #expect(await server.exit() == 0)
            #expect(notify.waitFor("STOPPING=1", seconds: 1), "\(notify.received)")
        }
    }
}

/// The protocol's addressing: a path, an abstract "@name", and the watchdog for this process only.
struct ServiceManagerNotifierTests {
    @Test func onlyANotifySocketMakesANotifierAndTheWatchdogIsHalfItsTimeout() {
        #expect(ServiceManagerNotifier(environment: [:]) == nil)
        #expect(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "relative"]) == nil)
        let n = ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000"], pid: 42)
        #expect(n?.watchdogInterval == .milliseconds(500))
        #expect(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "7"], pid: 42)?
            .watchdogInterval == nil)
        #expect(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "42"], pid: 42)?
            .watchdogInterval == .microseconds(500))
    }

    @Test func aMessageReachesAnAbstractSocket() throws {
        let name = "fnrunner-test-notify-\(getpid())"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in name.utf8.enumerated() { raw[i + 1] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.utf8.count)
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(rc == 0)
        let notifier = try #require(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "@" + name]))
        #expect(notifier.send("READY=1") == nil)
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(n > 0 && String(decoding: buffer[0..<n], as: UTF8.self) == "READY=1")
        let gone = try #require(ServiceManagerNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/notify.sock"]))
        #expect(gone.send("READY=1")?.step == "sendto")
    }
}
