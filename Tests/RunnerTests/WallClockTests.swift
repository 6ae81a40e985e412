import Foundation
import RunnerOS
import Testing

/// The call records' timestamps, written without Foundation, against Foundation's formatter.
struct WallClockTests {
    @Test func rfc3339WritesUTCWithOrWithoutMilliseconds() {
        #expect(WallClock.rfc3339(0, millis: true) == "1970-01-01T00:00:00.000Z")
        #expect(WallClock.rfc3339(1_765_000_000_007_900_000, millis: true) == "2025-12-06T05:46:40.007Z")
        #expect(WallClock.rfc3339(1_765_000_000_007_900_000, millis: false) == "2025-12-06T05:46:40Z")
    }

    @Test func rfc3339AgreesWithFoundationAcrossCenturies() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let millis = UInt64.random(in: 0..<13_000_000_000_000, using: &generator)  // to about 2381
            // 0.4 ms past the millisecond: Foundation's rounding and our truncation agree.
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000 + 0.0004))
            #expect(WallClock.rfc3339(millis * 1_000_000 + 999_999, millis: true) == expected)
        }
    }
}
