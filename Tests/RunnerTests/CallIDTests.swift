@testable import Runner
import Testing

struct CallIDTests {
    @Test func idsMadeInOneMillisecondDifferAlsoAcrossRefillsOfTheRandomBuffer() {
        // 10 random bytes an id, 4 KiB a refill: 2,000 ids cross four refills.
        let ids = (0..<2000).map { _ in CallID.make(wallNanos: 1_764_000_000_000_000_000) }
        #expect(Set(ids).count == ids.count)
        #expect(Set(ids.map { $0.prefix(10) }).count == 1, "the same millisecond, the same time part")
        let alphabet = Set(CallID.alphabet)
        #expect(ids.allSatisfy { $0.utf8.count == 26 && $0.utf8.allSatisfy(alphabet.contains) })
        // Random bits: every character of the alphabet shows up in the last position.
        #expect(Set(ids.map { $0.utf8.last! }).count == 32)
    }

    @Test func idsSortByTheMillisecondTheyWereMadeIn() {
        let millis: [UInt64] = [1, 31, 32, 1_000, 1_764_000_000_000, 1_764_000_000_001, 18_000_000_000_000]
        let ids = millis.map { CallID.make(wallNanos: $0 * 1_000_000) }
        #expect(ids == ids.sorted())
    }
}
