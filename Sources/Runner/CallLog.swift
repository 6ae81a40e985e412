import Synchronization

/// A call's log (the function's stderr, and stdout for cold calls), kept up to a size limit
/// with one truncation line after it, as Fn keeps it. Writes never fail: a function must not
/// be able to break its own call by logging too much.
public final class CallLog: Sendable {
    public let limitBytes: Int
    /// The call it belongs to, for the lines of it the node's own log gets (FN_LOG_FUNCTION_OUTPUT).
    public let callID: String?

    private struct State {
        var bytes: [UInt8] = []
        var truncated = false
    }
    private let state = Mutex(State())

    /// Fn's default FN_MAX_LOG_SIZE_BYTES.
    public static let defaultLimit = 1 << 20

    public init(limitBytes: Int = CallLog.defaultLimit, callID: String? = nil) {
        self.limitBytes = max(0, limitBytes)
        self.callID = callID
    }

    /// Appends what fits; after the limit, one truncation line and nothing more.
    public func write(_ data: some Collection<UInt8>) {
        state.withLock { s in
            if s.truncated { return }
            let room = limitBytes - s.bytes.count
            if data.count <= room {
                s.bytes.append(contentsOf: data)
                return
            }
            s.bytes.append(contentsOf: data.prefix(room))
            s.bytes.append(contentsOf: Array("\n-----max log size \(limitBytes) bytes exceeded, truncating log-----\n".utf8))
            s.truncated = true
        }
    }

    public func write(_ text: String) { write(Array(text.utf8)) }

    public var bytes: [UInt8] { state.withLock { $0.bytes } }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    public var isTruncated: Bool { state.withLock { $0.truncated } }
}
