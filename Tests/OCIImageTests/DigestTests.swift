import OCIImage
import RunnerOS
import Testing

@Suite struct DigestTests {
    @Test func sha256OfTheStandardVectorsMatchesFIPS180() {
        #expect(Digest.of([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digest.of(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func aHasherFedInUnevenPiecesGivesTheDigestOfTheWhole() {
        // A million "a", in pieces that straddle the 64-byte block boundary every way.
        let hasher = SHA256Hasher()
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        var offset = 0
        var piece = 1
        bytes.withUnsafeBytes { all in
            while offset < all.count {
                let end = min(all.count, offset + piece)
                hasher.update(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
                offset = end
                piece = piece % 97 + 13
            }
        }
        #expect(hasher.finish().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(Digest.of(bytes).hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func onlyLowercaseSha256DigestsParse() throws {
        let hex = String(repeating: "ab", count: 32)
        #expect(try Digest.parse("sha256:" + hex).hex == hex)
        #expect(throws: RunnerError.self) { try Digest.parse("sha512:" + hex) }
        #expect(throws: RunnerError.self) { try Digest.parse("sha256:" + hex.uppercased()) }
        #expect(throws: RunnerError.self) { try Digest.parse("sha256:" + hex.dropLast()) }
        #expect(throws: RunnerError.self) { try Digest.parse(hex) }
    }
}
