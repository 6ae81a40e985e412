import NIOSSL
import RunnerOS

/// TLS for the pure runner, as Fn's FN_NODE_CERT settings give it: the server's certificate
/// chain and key (PEM files), and optionally the CA that client certificates (the LB's) must
/// be signed by, which turns on mutual TLS. Plaintext when none is set, like Fn.
public struct RunnerTLS: Sendable, Equatable {
    public var certificate: String
    public var key: String
    /// With it, a client must present a certificate signed by this CA (mutual TLS).
    public var clientCA: String?

    public init(certificate: String, key: String, clientCA: String? = nil) {
        self.certificate = certificate
        self.key = key
        self.clientCA = clientCA
    }

    /// FN_NODE_CERT, FN_NODE_CERT_KEY, FN_NODE_CERT_AUTHORITY; nil when none is set. A key
    /// without a certificate (or the other way round), or a file that cannot be read, is an
    /// error naming the variable.
    public static func fromEnvironment(_ env: [String: String]) throws(RunnerError) -> RunnerTLS? {
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        let cert = value("FN_NODE_CERT"), key = value("FN_NODE_CERT_KEY"), ca = value("FN_NODE_CERT_AUTHORITY")
        if cert == nil && key == nil && ca == nil { return nil }
        guard let cert, let key else {
            throw RunnerError(.invalidArgument, "FN_NODE_CERT and FN_NODE_CERT_KEY go together (and FN_NODE_CERT_AUTHORITY needs both)")
        }
        for (name, path) in [("FN_NODE_CERT", cert), ("FN_NODE_CERT_KEY", key), ("FN_NODE_CERT_AUTHORITY", ca)] {
            if let path, (try? FileSystem.read(path)) == nil {
                throw RunnerError(.invalidArgument, "\(name): cannot read \(path)", step: "read TLS files")
            }
        }
        return RunnerTLS(certificate: cert, key: key, clientCA: ca)
    }

    /// The server's TLS context: TLS 1.2 or later, HTTP/2 by ALPN, and with a client CA, only
    /// clients whose certificate it signed (host names are not checked: LBs connect from
    /// anywhere). An unreadable or malformed file fails the server's start, naming it.
    func makeContext() throws -> NIOSSLContext {
        func load<T>(_ name: String, _ path: String, _ read: () throws -> T) throws -> T {
            do {
                return try read()
            } catch {
                throw RunnerError(.invalidArgument, "\(name): \(path) is not usable: \(error)", step: "load TLS files")
            }
        }
        let chain = try load("FN_NODE_CERT", certificate) { try NIOSSLCertificate.fromPEMFile(certificate) }
        let privateKey = try load("FN_NODE_CERT_KEY", key) { try NIOSSLPrivateKey(file: key, format: .pem) }
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        config.applicationProtocols = ["h2"]
        if let clientCA {
            config.trustRoots = .certificates(try load("FN_NODE_CERT_AUTHORITY", clientCA) { try NIOSSLCertificate.fromPEMFile(clientCA) })
            config.certificateVerification = .noHostnameVerification
        }
        return try NIOSSLContext(configuration: config)
    }
}
