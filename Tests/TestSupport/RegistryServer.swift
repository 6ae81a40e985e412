import RunnerOS

#if canImport(Glibc)
import Glibc
#endif

/// A real registry (`docker-registry` from Debian, CNCF distribution) on 127.0.0.1 for one test:
/// plain, with htpasswd Basic auth, or with TLS + auth using a CA made here. Stopped and removed
/// by `stop()` (and on deinit).
public final class RegistryServer: @unchecked Sendable {
    public enum Kind { case plain, basicAuth, tlsAuth }

    public let port: Int
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
        port = Int(try await Shell.output("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'").trimmed)!
        directory = "/tmp/fnrunner-test-registry-\(getpid())-\(port)"
        try FileSystem.makeDirectories(directory + "/data")
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
        }
        if kind != .plain {
            try await Shell.run("htpasswd -Bbc \(directory)/htpasswd \(Self.username) \(Self.password) 2>/dev/null")
            config += "\nauth:\n  htpasswd:\n    realm: fn-test-realm\n    path: \(directory)/htpasswd"
        }
        if kind == .tlsAuth {
            try await Shell.run(
                "openssl req -x509 -newkey rsa:2048 -nodes -keyout \(directory)/tls.key -out \(directory)/tls.crt -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null"
            )
            try FileSystem.makeDirectories(certsDirectory + "/" + host)
            try await Shell.run("cp \(directory)/tls.crt \(certsDirectory)/\(host)/ca.crt")
        }
        try FileSystem.create(directory + "/config.yml", contents: config + "\n")
        process = try Subprocess(["/usr/bin/docker-registry", "serve", directory + "/config.yml"])
        let scheme = kind == .tlsAuth ? "https" : "http"
        // Up to 30 s, not a count of tries: under a loaded full run each curl takes longer, and
        // 100 tries once ran out (22 s) before the registry answered.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            // Each try is bounded too: a port that answers and never replies must not hang the test.
            let code = (try? await Shell.output("curl -sk -m 2 -o /dev/null -w '%{http_code}' \(scheme)://\(host)/v2/")) ?? ""
            if code == "200" || code == "401" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        stop()
        throw ShellError(command: "docker-registry serve (not ready: \(log))", status: -1)
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

    public func stop() {
        if let p = process {
            p.signal(SIGKILL)
            p.wait()
        }
        process = nil
        try? FileSystem.removeTree(directory)
    }

    deinit { stop() }
}
