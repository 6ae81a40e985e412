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
        // Made for every call: one string grown in place, no array of parts.
        var key = ""
        key.reserveCapacity(128 + appID.utf8.count + fnID.utf8.count + image.utf8.count)
        // Length-prefixing each field makes the encoding injective whatever the fields contain.
        func add(_ field: String) {
            key += String(field.utf8.count)
            key += ":"
            key += field
        }
        add(appID)
        add(fnID)
        add(image)
        add(format)
        add(String(memoryMB))
        add(String(cpuMillicores))
        add(String(timeoutSeconds))
        add(String(idleTimeoutSeconds))
        add(String(tmpfsMB))
        add("config")
        for k in config.keys.sorted() {
            add(k)
            add(config[k]!)
        }
        add("annotations")
        for k in annotations.keys.sorted() {
            add(k)
            add(annotations[k]!)
        }
        add("syslog")
        add(syslogURL)
        value = key
    }

    /// A key handed over by Fn's load balancer (slot_hash_id), used as it is.
    public init(lbSlotHash: String, idleTimeoutSeconds: Int) {
        value = "lb:" + lbSlotHash
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }

    public var description: String { value }
}
