import RunnerOS

/// A function's answer.
public struct FunctionResponse: Sendable, Equatable {
    public var status: Int
    /// Header names in lower case, in the order received.
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    /// The body went to the call's `ResponseStream` as it arrived (`body` is empty then).
    public var streamed = false
    /// The answer is good but the container must not serve another call (json excess data, an
    /// http-stream body ended by closing the connection).
    public package(set) var endsContainer = false

    public init(status: Int, headers: [HTTPHeader], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.name == n }?.value
    }
}

public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
