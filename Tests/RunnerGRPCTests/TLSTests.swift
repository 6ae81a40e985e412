import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Runner
import RunnerGRPC
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// TLS and mutual TLS for the pure runner (Fn's FN_NODE_CERT settings), with certificates
/// made by openssl for each test.
struct TLSTests {
    /// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
    final class Certificates {
        let dir = "/tmp/fnrunner-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        /// Three RSA keys take a second or more: awaited, not waited for on a cooperative thread.
        init() async throws {
            try FileSystem.makeDirectories(dir)
            try await Shell.run(
                """
                set -e; cd \(dir)
                openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=fnrunner-test-ca 2>/dev/null
                for who in server client; do
                  openssl req -newkey rsa:2048 -nodes -keyout $who.key -out $who.csr -subj /CN=$who 2>/dev/null
                  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > $who.ext
                  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $who.pem -days 2 -extfile $who.ext 2>/dev/null
                done
                """)
        }
        deinit { try? FileSystem.removeTree(dir) }
        func path(_ name: String) -> String { dir + "/" + name }
    }

    func withServer(tls: RunnerTLS, _ body: (Int) async throws -> Void) async throws {
        let agent = Agent(configuration: .init(), driver: StubDriver(), tracker: ResourceTracker(totalMemoryBytes: 1 << 30, totalCPUMillicores: 1000))
        try await GRPCHarness.serving(GRPCRunnerService(host: "127.0.0.1", port: 0, runner: PureRunner(agent: agent), tls: tls), body)
    }

    /// The deadline only keeps a wrong server from holding the test: a refusal comes at once
    /// (a failed handshake), and an admitted call once the handshake is through. 5 s was too
    /// short in a full run under two CPU hogs, where the whole test process started about 10 s
    /// late and both admitted calls here ran out of time.
    func status(port: Int, _ security: HTTP2ClientTransport.Posix.TransportSecurity) async throws -> RunnerStatus {
        try await withGRPCClient(transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security)) {
            try await RunnerClient(wrapping: $0).status2(.init(), options: { var o = CallOptions.defaults; o.timeout = .seconds(60); return o }())
        }
    }

    func refused(port: Int, _ security: HTTP2ClientTransport.Posix.TransportSecurity) async -> Bool {
        do {
            _ = try await status(port: port, security)
            return false
        } catch {
            return true
        }
    }

    @Test func withMutualTLSOnlyAClientWithACertificateFromTheCAGetsIn() async throws {
        let certs = try await Certificates()
        try await withServer(tls: RunnerTLS(certificate: certs.path("server.pem"), key: certs.path("server.key"), clientCA: certs.path("ca.pem"))) { port in
            let trusted: HTTP2ClientTransport.Posix.TransportSecurity = .mTLS(
                certificateChain: [.file(path: certs.path("client.pem"), format: .pem)], privateKey: .file(path: certs.path("client.key"), format: .pem)
            ) { $0.trustRoots = .certificates([.file(path: certs.path("ca.pem"), format: .pem)]) }
            let admitted = try await status(port: port, trusted)
            #expect(admitted.active == 0)
            let anonymous: HTTP2ClientTransport.Posix.TransportSecurity = .tls { $0.trustRoots = .certificates([.file(path: certs.path("ca.pem"), format: .pem)]) }
            #expect(await refused(port: port, anonymous), "no client certificate")
            #expect(await refused(port: port, .plaintext), "plaintext")
        }
    }

    @Test func withTLSAloneAnyClientThatTrustsTheServerGetsIn() async throws {
        let certs = try await Certificates()
        try await withServer(tls: RunnerTLS(certificate: certs.path("server.pem"), key: certs.path("server.key"))) { port in
            let client: HTTP2ClientTransport.Posix.TransportSecurity = .tls { $0.trustRoots = .certificates([.file(path: certs.path("ca.pem"), format: .pem)]) }
            let admitted = try await status(port: port, client)
            #expect(admitted.active == 0)
        }
    }

    @Test func theNodeCertSettingsAreReadTogetherAndCheckedByName() throws {
        #expect(try RunnerTLS.fromEnvironment([:]) == nil)
        #expect {
            _ = try RunnerTLS.fromEnvironment(["FN_NODE_CERT_KEY": "/tmp/k"])
        } throws: { error in
            (error as? RunnerError)?.message.contains("FN_NODE_CERT and FN_NODE_CERT_KEY go together") == true
        }
        #expect {
            _ = try RunnerTLS.fromEnvironment(["FN_NODE_CERT": "/nonexistent/cert.pem", "FN_NODE_CERT_KEY": "/nonexistent/key.pem"])
        } throws: { error in
            (error as? RunnerError)?.message.contains("FN_NODE_CERT: cannot read /nonexistent/cert.pem") == true
        }
    }
}
