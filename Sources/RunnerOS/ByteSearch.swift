extension Array where Element == UInt8 {
    /// Where `needle` first occurs (HTTP framing: CRLF, CRLFCRLF), nil if it does not.
    public func firstOffset(of needle: [UInt8]) -> Int? {
        guard !needle.isEmpty, count >= needle.count else { return nil }
        outer: for i in 0...(count - needle.count) {
            for j in 0..<needle.count where self[i + j] != needle[j] { continue outer }
            return i
        }
        return nil
    }
}
