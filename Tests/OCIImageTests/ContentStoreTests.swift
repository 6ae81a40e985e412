import OCIImage
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ContentStoreTests {
    func makeStore() throws -> (ContentStore, String) {
        let dir = "/tmp/fnrunner-test-content-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        return (try ContentStore(root: dir), dir)
    }

    @Test func aBlobIsStoredUnderItsDigestAndReadBackVerified() throws {
        let (store, dir) = try makeStore()
        defer { try? FileSystem.removeTree(dir) }
        let bytes = Array("hello blob".utf8)
        let digest = try store.write(bytes)
        #expect(digest == Digest.of(bytes))
        #expect(try store.read(digest) == bytes)
        #expect(store.size(digest) == Int64(bytes.count))
    }

    @Test func bytesThatDoNotMatchTheExpectedDigestAreNeverStored() throws {
        let (store, dir) = try makeStore()
        defer { try? FileSystem.removeTree(dir) }
        let claimed = Digest.of(Array("the real content".utf8))
        let error = #expect(throws: RunnerError.self) { try store.write(Array("tampered".utf8), expected: claimed) }
        #expect(error?.step == "verify blob")
        #expect(!store.has(claimed))
        #expect(store.allBlobs().isEmpty)
        #expect(try FileSystem.list(dir + "/ingest").isEmpty)
    }

    @Test func aTruncatedIngestIsRejectedBySize() throws {
        let (store, dir) = try makeStore()
        defer { try? FileSystem.removeTree(dir) }
        let full = Array(repeating: UInt8(7), count: 1000)
        let source = dir + "/partial"
        try FileSystem.create(source, contents: String(decoding: full[0..<600], as: UTF8.self))
        #expect(throws: RunnerError.self) { try store.ingestFile(source, expected: Digest.of(full), size: 1000) }
        #expect(store.allBlobs().isEmpty)
    }

    @Test func aBlobCorruptedOnDiskIsDetectedWhenRead() throws {
        let (store, dir) = try makeStore()
        defer { try? FileSystem.removeTree(dir) }
        let digest = try store.write(Array("{\"schemaVersion\":2}".utf8))
        try FileSystem.create(store.path(digest), contents: "{\"schemaVersion\":3}")
        let error = #expect(throws: RunnerError.self) { try store.read(digest) }
        #expect(error?.message.contains("corrupt") == true)
    }

    @Test func leftoversOfAnInterruptedWriteAreRemovedOnOpen() throws {
        let (_, dir) = try makeStore()
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.create(dir + "/ingest/4194305-half-written", contents: "partial")
        let reopened = try ContentStore(root: dir)
        #expect(try FileSystem.list(dir + "/ingest").isEmpty)
        #expect(reopened.allBlobs().isEmpty)
    }
}
