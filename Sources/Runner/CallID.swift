import RunnerOS

/// Call ids as Fn makes them: ULIDs (48 bits of milliseconds, 80 random bits, Crockford
/// base32), so they sort by creation time in listings.
public enum CallID {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(wallNanos: UInt64 = WallClock.nowNanos()) -> String {
        var rng = SystemRandomNumberGenerator()
        let millis = wallNanos / 1_000_000
        let high = UInt16.random(in: .min ... .max, using: &rng)
        let low = UInt64.random(in: .min ... .max, using: &rng)
        var out = [UInt8](repeating: 0, count: 26)
        // 10 characters of time (50 bits, the top 2 always 0), then 16 of randomness (80 bits).
        for i in 0..<10 { out[9 - i] = alphabet[Int((millis >> (5 * UInt64(i))) & 31)] }
        for i in 0..<16 {
            let bit = 5 * i  // from the low end of the 80-bit value
            let value: UInt64 = bit < 64 ? (low >> UInt64(bit)) | (bit > 59 ? UInt64(high) << UInt64(64 - bit) : 0) : UInt64(high) >> UInt64(bit - 64)
            out[25 - i] = alphabet[Int(value & 31)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
