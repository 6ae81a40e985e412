import Crypto
import RunnerOS

/// A content digest ("sha256:<64 hex>"): the identity of every blob, manifest and layer.
public struct Digest: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    public let algorithm: String
    public let hex: String

    public var description: String { algorithm + ":" + hex }

    public init(sha256 hex: String) {
        algorithm = "sha256"
        self.hex = hex
    }

    /// Parses and validates; only sha256 is accepted (what every registry and image uses).
    public static func parse(_ text: String, context: String = "digest") throws(RunnerError) -> Digest {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            throw RunnerError(.invalidArgument, "invalid digest \"\(text)\" in \(context): expected sha256:<64 hex digits>", step: "parse digest")
        }
        guard parts[0] == "sha256" else {
            throw RunnerError(.invalidArgument, "unsupported digest algorithm \"\(parts[0])\" in \(context): only sha256", step: "parse digest")
        }
        let hex = parts[1]
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw RunnerError(.invalidArgument, "invalid digest \"\(text)\" in \(context): expected 64 lowercase hex digits", step: "parse digest")
        }
        return Digest(sha256: hex)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Digest.parse(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public static func < (a: Digest, b: Digest) -> Bool { a.description < b.description }

    /// The digest of a byte buffer.
    public static func of(_ bytes: some Collection<UInt8>) -> Digest {
        let hasher = SHA256Hasher()
        var copy = Array(bytes)
        copy.withUnsafeMutableBytes { hasher.update(UnsafeRawBufferPointer($0)) }
        return hasher.finish()
    }
}

/// Incremental SHA-256, so blobs are hashed while they stream to disk. swift-crypto's, linked in
/// (BoringSSL's assembly underneath): nothing to find or load at run time, and no C forwarders of
/// our own to keep in step with a system library.
public final class SHA256Hasher {
    private var state = SHA256()

    public init() {}

    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { state.update(bufferPointer: bytes) }
    }

    public func finish() -> Digest {
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        for b in state.finalize() { hex.append(digits[Int(b >> 4)]); hex.append(digits[Int(b & 15)]) }
        return Digest(sha256: String(decoding: hex, as: UTF8.self))
    }
}
