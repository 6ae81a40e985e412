import RunnerOS
import Synchronization

/// The loopback ports tests hand to servers they start: a band the kernel never picks for
/// `bind(0)` or an outgoing connection (below `ip_local_port_range`, or above it when it starts
/// low), walked from a random place so that two test processes seldom meet.
enum TestPorts {
    static let range: ClosedRange<Int> = {
        let text = (try? FileSystem.read("/proc/sys/net/ipv4/ip_local_port_range")) ?? "32768 60999"
        let bounds = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        let (low, high) = bounds.count == 2 ? (bounds[0], bounds[1]) : (32768, 60999)
        if low - 1 >= 12_000 { return 10_000...(low - 1) }
        if high + 1 <= 63_535 { return (high + 1)...65_535 }
        return 10_000...65_535  // a range taking (nearly) every port: nothing to keep clear of
    }()

    static var count: Int { range.count }

    private static let cursor = Mutex(Int.random(in: 0..<range.count))

    /// The next port of the band, wrapping around.
    static func next() -> Int {
        cursor.withLock { offset in
            offset = (offset + 1) % range.count
            return range.lowerBound + offset
        }
    }
}
