import RunnerOS

/// An IPv4 address in host byte order.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Dotted quad, four decimal parts each 0...255.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let byte = UInt8(part) else { return nil }
            v = v << 8 | UInt32(byte)
        }
        value = v
    }

    /// What netlink and sockaddr_in carry.
    public var networkOrder: UInt32 { value.bigEndian }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv4 prefix such as 10.89.0.0/16: the function subnet, whose first address is the
/// bridge's (the functions' gateway) and whose others go to containers.
public struct IPv4Network: Hashable, Sendable, CustomStringConvertible {
    public let base: IPv4Address
    public let prefix: Int

    public init(base: IPv4Address, prefix: Int) {
        self.prefix = prefix
        self.base = IPv4Address(base.value & Self.mask(prefix))
    }

    /// Parses "a.b.c.d/n"; a base with host bits set is an error, not silently masked (a typo
    /// such as 10.89.0.1/16 would otherwise name a different network than meant).
    public init(parsing text: String) throws(RunnerError) {
        func invalid(_ why: String) -> RunnerError {
            RunnerError(.invalidArgument, "subnet \"\(text)\" \(why)", step: "parse subnet")
        }
        let halves = text.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, let address = IPv4Address(halves[0]) else {
            throw invalid("is not an IPv4 prefix like 10.89.0.0/16")
        }
        guard let prefix = Int(halves[1]), (8...30).contains(prefix) else {
            throw invalid("needs a prefix length from /8 to /30")
        }
        guard address.value & ~Self.mask(prefix) == 0 else {
            throw invalid("has host bits set (did you mean \(IPv4Network(base: address, prefix: prefix))?)")
        }
        self.init(base: address, prefix: prefix)
    }

    static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix) }

    public var mask: UInt32 { Self.mask(prefix) }
    public var broadcast: IPv4Address { IPv4Address(base.value | ~mask) }
    /// The bridge's own address.
    public var gateway: IPv4Address { IPv4Address(base.value + 1) }
    /// The addresses containers may get: all but the network, the gateway and the broadcast.
    public var containerAddresses: ClosedRange<UInt32> { (base.value + 2)...(broadcast.value - 1) }

    public func contains(_ address: IPv4Address) -> Bool { address.value & mask == base.value }

    public func overlaps(_ other: IPv4Network) -> Bool {
        let shorter = min(prefix, other.prefix)
        return base.value & Self.mask(shorter) == other.base.value & Self.mask(shorter)
    }

    public var description: String { "\(base)/\(prefix)" }
}
