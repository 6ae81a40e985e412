import RunnerOS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Call ids as Fn makes them: ULIDs (48 bits of milliseconds, 80 random bits, Crockford
/// base32), so they sort by creation time in listings.
public enum CallID {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// The kernel's random bytes, fetched 4 KiB at a time: the standard generator made two
    /// `getrandom` system calls for every id, on every call's path.
    private static let entropy = Mutex(RandomBytes())

    public static func make(wallNanos: UInt64 = WallClock.nowNanos()) -> String {
        let millis = wallNanos / 1_000_000
        let (high, low) = entropy.withLock { ($0.next16(), $0.next64()) }
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

/// A buffer of the kernel's random bytes, refilled when used up; each byte is handed out once.
private struct RandomBytes {
    private var bytes = [UInt8](repeating: 0, count: 4096)
    private var used = 4096

    mutating func next64() -> UInt64 {
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(nextByte()) }
        return v
    }

    mutating func next16() -> UInt16 { UInt16(nextByte()) << 8 | UInt16(nextByte()) }

    private mutating func nextByte() -> UInt8 {
        if used == bytes.count { refill() }
        defer { used += 1 }
        return bytes[used]
    }

    private mutating func refill() {
        bytes.withUnsafeMutableBytes { buffer in
            var filled = 0
            while filled < buffer.count {
                let chunk = min(256, buffer.count - filled)  // getentropy's most per call
                if getentropy(buffer.baseAddress! + filled, chunk) != 0 {
                    // No getrandom (a kernel older than 3.17): the standard generator's source.
                    var rng = SystemRandomNumberGenerator()
                    for i in filled..<buffer.count { buffer[i] = UInt8.random(in: .min ... .max, using: &rng) }
                    return
                }
                filled += chunk
            }
        }
        used = 0
    }
}
