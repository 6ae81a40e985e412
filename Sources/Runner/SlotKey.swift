/// The identity of a slot queue: every field that changes how a container is made or
/// configured. Any change of image, limits, config or annotations gives a new key, so a
/// container is never reused across a change (Fn hashes the same fields with SHA-256; any
/// injective encoding works, since keys never leave the process).
public struct SlotKey: Sendable, Hashable, CustomStringConvertible {
    public static func == (a: SlotKey, b: SlotKey) -> Bool { a.value == b.value }
    public func hash(into h: inout Hasher) { h.combine(value) }

    public let value: String
    /// The launcher keeps an idle queue at least twice this long.
    public let idleTimeoutSeconds: Int

    public init(
        appID: String, fnID: String, image: String, format: String, memoryMB: UInt64, cpuMillicores: UInt64,
        timeoutSeconds: Int, idleTimeoutSeconds: Int, tmpfsMB: UInt64 = 0, config: [String: String], annotations: [String: String],
        syslogURL: String = ""
    ) {
        self.idleTimeoutSeconds = idleTimeoutSeconds
        var parts: [String] = [appID, fnID, image, format]
        parts += ["\(memoryMB)", "\(cpuMillicores)", "\(timeoutSeconds)", "\(idleTimeoutSeconds)", "\(tmpfsMB)"]
        parts.append("config")
        for k in config.keys.sorted() { parts += [k, config[k]!] }
        parts.append("annotations")
        for k in annotations.keys.sorted() { parts += [k, annotations[k]!] }
        parts += ["syslog", syslogURL]
        // Length-prefixing each field makes the encoding injective whatever the fields contain.
        value = parts.map { "\($0.utf8.count):\($0)" }.joined()
    }

    /// A key handed over by Fn's load balancer (slot_hash_id), used as it is.
    public init(lbSlotHash: String, idleTimeoutSeconds: Int) {
        value = "lb:" + lbSlotHash
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }

    public var description: String { value }
}
