import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// A real registry (`docker-registry` from Debian, CNCF distribution) on 127.0.0.1 for one test:
/// plain, with htpasswd Basic auth, or with TLS + auth using a CA made here. Stopped and removed
/// by `stop()` (and on deinit).
public final class RegistryServer: @unchecked Sendable {
    public enum Kind { case plain, basicAuth, tlsAuth }

    public private(set) var port = 0
    public let directory: String
    public let kind: Kind
    public static let username = "fnuser"
    public static let password = "fnpass"
    private var process: Subprocess?

    public var host: String { "127.0.0.1:\(port)" }
    /// certs.d-style directory holding `<host>/ca.crt` (TLS registries only).
    public var certsDirectory: String { directory + "/certs.d" }
    /// The registry's log and access log (stderr and stdout).
    public var log: String { (process?.stdout ?? "") + (process?.stderr ?? "") }

    public init(_ kind: Kind = .plain) async throws {
        self.kind = kind
        directory = "/tmp/fnrunner-test-registry-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        try FileSystem.makeDirectories(directory + "/data")
        if kind != .plain {
            try await Shell.run("htpasswd -Bbc \(directory)/htpasswd \(Self.username) \(Self.password) 2>/dev/null")
        }
        if kind == .tlsAuth {
            try await Shell.run(
                "openssl req -x509 -newkey rsa:2048 -nodes -keyout \(directory)/tls.key -out \(directory)/tls.crt -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null"
            )
        }
        // The port is free when chosen, but another test may bind it before the registry does;
        // then the registry exits, and a new port is tried.
        var why = ""
        for _ in 0..<3 {
            port = try Host.freeLoopbackPort()
            if try await start() { return }
            why = log
            stop(removing: false)
            if !why.contains("address already in use") { break }
        }
        stop()
        throw ShellError(command: "docker-registry serve (not ready: \(why))", status: -1)
    }

    /// Starts the registry on `port`; whether it answered within 30 s.
    private func start() async throws -> Bool {
        var config = """
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: \(directory)/data
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            """
        if kind == .tlsAuth {
            config += "\n  tls:\n    certificate: \(directory)/tls.crt\n    key: \(directory)/tls.key"
            try FileSystem.makeDirectories(certsDirectory + "/" + host)
            try await Shell.run("cp \(directory)/tls.crt \(certsDirectory)/\(host)/ca.crt")
        }
        if kind != .plain {
            config += "\nauth:\n  htpasswd:\n    realm: fn-test-realm\n    path: \(directory)/htpasswd"
        }
        try FileSystem.create(directory + "/config.yml", contents: config + "\n")
        process = try Subprocess(["/usr/bin/docker-registry", "serve", directory + "/config.yml"])
        let scheme = kind == .tlsAuth ? "https" : "http"
        // Up to 30 s, not a count of tries: under a loaded full run each curl takes longer, and
        // 100 tries once ran out (22 s) before the registry answered.
        // Tried once more past the deadline: a test process that stalled must not give up untried.
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let late = ContinuousClock.now >= deadline
            // Each try is bounded too: a port that answers and never replies must not hang the test.
            let code = (try? await Shell.output("curl -sk -m 2 -o /dev/null -w '%{http_code}' \(scheme)://\(host)/v2/")) ?? ""
            if code == "200" || code == "401" { return true }
            if late || log.contains("address already in use") { return false }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Pushes an image from an OCI layout with skopeo.
    public func push(_ source: String, as name: String, extra: String = "") async throws {
        var creds = ""
        if kind != .plain { creds = "--dest-creds \(Self.username):\(Self.password)" }
        let tls = kind == .tlsAuth ? "--dest-cert-dir \(certsDirectory)/\(host)" : "--dest-tls-verify=false"
        try await Shell.run("skopeo copy --quiet \(extra) \(tls) \(creds) \(source) docker://\(host)/\(name) >/dev/null")
    }

    /// How many times the registry served GET of this blob (from its access log).
    public func blobGets(_ digest: String) -> Int {
        log.split(separator: "\n").filter { $0.contains("\"GET /v2/") && $0.contains("/blobs/\(digest)") }.count
    }

    public func stop() { stop(removing: true) }

    private func stop(removing: Bool) {
        if let p = process {
            p.signal(SIGKILL)
            p.wait()
        }
        process = nil
        if removing { try? FileSystem.removeTree(directory) }
    }

    deinit { stop() }
}
