/// An application: a named group of functions with shared configuration.
public struct App: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var config: [String: String]
    public var annotations: [String: JSONValue]
    public var syslogURL: String?
    public var createdAt: String
    public var updatedAt: String

    public init(
        id: String, name: String, config: [String: String] = [:], annotations: [String: JSONValue] = [:], syslogURL: String? = nil,
        createdAt: String, updatedAt: String
    ) {
        self.id = id
        self.name = name
        self.config = config
        self.annotations = annotations
        self.syslogURL = syslogURL
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, config, annotations
        case syslogURL = "syslog_url", createdAt = "created_at", updatedAt = "updated_at"
    }
}

/// A function: an image with its limits, format and configuration, in an app.
public struct Fn: Sendable, Equatable, Codable {
    public var id: String
    public var appID: String
    public var name: String
    public var image: String
    public var format: String
    public var memory: UInt64
    public var cpus: UInt64
    public var timeout: Int
    public var idleTimeout: Int
    public var config: [String: String]
    public var annotations: [String: JSONValue]
    public var createdAt: String
    public var updatedAt: String

    public init(
        id: String, appID: String, name: String, image: String, format: String = "http-stream", memory: UInt64 = 128, cpus: UInt64 = 0,
        timeout: Int = 30, idleTimeout: Int = 30, config: [String: String] = [:], annotations: [String: JSONValue] = [:],
        createdAt: String, updatedAt: String
    ) {
        self.id = id
        self.appID = appID
        self.name = name
        self.image = image
        self.format = format
        self.memory = memory
        self.cpus = cpus
        self.timeout = timeout
        self.idleTimeout = idleTimeout
        self.config = config
        self.annotations = annotations
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, image, format, memory, cpus, timeout, config, annotations
        case appID = "app_id", idleTimeout = "idle_timeout", createdAt = "created_at", updatedAt = "updated_at"
    }
}

/// An HTTP trigger: a path under /t/{app name} that invokes a function.
public struct Trigger: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var appID: String
    public var fnID: String
    public var type: String
    public var source: String
    public var annotations: [String: JSONValue]
    public var createdAt: String
    public var updatedAt: String

    public init(
        id: String, name: String, appID: String, fnID: String, type: String = "http", source: String,
        annotations: [String: JSONValue] = [:], createdAt: String, updatedAt: String
    ) {
        self.id = id
        self.name = name
        self.appID = appID
        self.fnID = fnID
        self.type = type
        self.source = source
        self.annotations = annotations
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, type, source, annotations
        case appID = "app_id", fnID = "fn_id", createdAt = "created_at", updatedAt = "updated_at"
    }
}

/// Where an HTTP trigger request goes: the app named in its path and the trigger of its source.
public struct TriggerRoute: Sendable, Equatable {
    public var app: App
    public var trigger: Trigger
}

/// One page of a listing, and where the next one starts (nil at the end).
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

// Fn leaves an empty app config and empty annotations out of its JSON (`omitempty`), but
// always writes a fn's config; so do these. A missing one reads as empty.
extension App {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id), name: try c.decode(String.self, forKey: .name),
            config: try c.decodeIfPresent([String: String].self, forKey: .config) ?? [:],
            annotations: try c.decodeIfPresent([String: JSONValue].self, forKey: .annotations) ?? [:],
            syslogURL: try c.decodeIfPresent(String.self, forKey: .syslogURL), createdAt: try c.decode(String.self, forKey: .createdAt),
            updatedAt: try c.decode(String.self, forKey: .updatedAt))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        if !config.isEmpty { try c.encode(config, forKey: .config) }
        if !annotations.isEmpty { try c.encode(annotations, forKey: .annotations) }
        try c.encodeIfPresent(syslogURL, forKey: .syslogURL)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
    }
}

extension Fn {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id), appID: try c.decode(String.self, forKey: .appID),
            name: try c.decode(String.self, forKey: .name), image: try c.decode(String.self, forKey: .image),
            format: try c.decode(String.self, forKey: .format), memory: try c.decode(UInt64.self, forKey: .memory),
            cpus: try c.decode(UInt64.self, forKey: .cpus), timeout: try c.decode(Int.self, forKey: .timeout),
            idleTimeout: try c.decode(Int.self, forKey: .idleTimeout),
            config: try c.decodeIfPresent([String: String].self, forKey: .config) ?? [:],
            annotations: try c.decodeIfPresent([String: JSONValue].self, forKey: .annotations) ?? [:],
            createdAt: try c.decode(String.self, forKey: .createdAt), updatedAt: try c.decode(String.self, forKey: .updatedAt))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(appID, forKey: .appID)
        try c.encode(name, forKey: .name)
        try c.encode(image, forKey: .image)
        try c.encode(format, forKey: .format)
        try c.encode(memory, forKey: .memory)
        try c.encode(cpus, forKey: .cpus)
        try c.encode(timeout, forKey: .timeout)
        try c.encode(idleTimeout, forKey: .idleTimeout)
        try c.encode(config, forKey: .config)
        if !annotations.isEmpty { try c.encode(annotations, forKey: .annotations) }
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
    }
}
