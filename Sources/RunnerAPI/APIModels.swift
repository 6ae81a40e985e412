import Runner
import RunnerStore

/// What clients send to create or update an app; every field optional so that updates can say
/// only what changes. Fields not named here are ignored, as Fn ignores them.
struct AppInput: Decodable {
    var id: String?
    var name: String?
    var config: [String: String]?
    var annotations: [String: JSONValue]?
    var syslogURL: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, config, annotations, syslogURL = "syslog_url"
    }
}

struct FnInput: Decodable {
    var id: String?
    var appID: String?
    var name: String?
    var image: String?
    var format: String?
    var memory: UInt64?
    var cpus: UInt64?
    var timeout: Int?
    var idleTimeout: Int?
    var config: [String: String]?
    var annotations: [String: JSONValue]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, image, format, memory, cpus, timeout, config, annotations
        case appID = "app_id", idleTimeout = "idle_timeout"
    }
}

struct TriggerInput: Decodable {
    var id: String?
    var name: String?
    var appID: String?
    var fnID: String?
    var type: String?
    var source: String?
    var annotations: [String: JSONValue]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, type, source, annotations
        case appID = "app_id", fnID = "fn_id"
    }
}

/// A listing as Fn answers it.
struct ListBody<Item: Encodable>: Encodable {
    var items: [Item]
    var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case items, nextCursor = "next_cursor"
    }
}
