import FoundationEssentials
import RunnerOS

/// The image configuration blob: how to run the image and the diff IDs of its layers.
public struct ImageConfig: Codable, Sendable, Equatable {
    public struct RunConfig: Codable, Sendable, Equatable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
        public var Volumes: [String: EmptyObject]?
        public var Labels: [String: String]?
        public init() {}
    }

    public struct EmptyObject: Codable, Sendable, Equatable {}

    public struct RootFS: Codable, Sendable, Equatable {
        public var type: String
        public var diff_ids: [Digest]
    }

    public var architecture: String?
    public var os: String?
    public var config: RunConfig?
    public var rootfs: RootFS

    public static func decode(_ bytes: [UInt8]) throws(RunnerError) -> ImageConfig {
        do {
            return try JSONDecoder().decode(ImageConfig.self, from: Data(bytes))
        } catch {
            throw RunnerError(.invalidArgument, "image config is not valid: \(error)", step: "decode image config")
        }
    }
}
