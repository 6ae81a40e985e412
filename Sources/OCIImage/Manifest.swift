import FoundationEssentials
import RunnerOS

/// An image manifest (OCI or Docker schema 2): one config and the layers, bottom first.
public struct Manifest: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?

    public init(mediaType: String?, config: Descriptor, layers: [Descriptor]) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
    }
}

/// An image index (OCI) or manifest list (Docker): one manifest per platform.
public struct ImageIndex: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    /// The entry for `platform`: same OS and architecture, variant preferred when it matches.
    public func manifest(for platform: Platform) -> Descriptor? {
        let candidates = manifests.filter {
            MediaType.isManifest($0.mediaType) && $0.platform?.os == platform.os && $0.platform?.architecture == platform.architecture
        }
        return candidates.first { $0.platform?.variant == platform.variant } ?? candidates.first
    }
}

/// A manifest blob, decoded into what it turned out to be.
public enum ManifestDocument: Sendable {
    case index(ImageIndex)
    case manifest(Manifest)

    /// Decodes a manifest or index, using the media type from the transport (Content-Type) or
    /// the document's own, and refusing Docker schema 1 with an explanation.
    public static func decode(_ bytes: [UInt8], mediaType transportType: String?) throws(RunnerError) -> ManifestDocument {
        struct Probe: Decodable {
            var schemaVersion: Int?
            var mediaType: String?
            var manifests: [Descriptor]?
            var layers: [Descriptor]?
        }
        let data = Data(bytes)
        let probe: Probe
        do { probe = try JSONDecoder().decode(Probe.self, from: data) } catch {
            throw RunnerError(.invalidArgument, "manifest is not valid JSON: \(error)", step: "decode manifest")
        }
        let type = probe.mediaType ?? transportType
        if probe.schemaVersion == 1 || type == MediaType.dockerSchema1 || type == MediaType.dockerSchema1Signed {
            throw RunnerError(
                .unsupported,
                "Docker schema 1 manifests are not supported (deprecated since 2017): push the image again with a current client",
                step: "decode manifest")
        }
        do {
            if let type, MediaType.isIndex(type) || (probe.manifests != nil && probe.layers == nil) {
                return .index(try JSONDecoder().decode(ImageIndex.self, from: data))
            }
            if probe.layers != nil {
                return .manifest(try JSONDecoder().decode(Manifest.self, from: data))
            }
        } catch {
            throw RunnerError(.invalidArgument, "manifest does not match the OCI schema: \(error)", step: "decode manifest")
        }
        throw RunnerError(.unsupported, "unsupported manifest media type \(type ?? "(none)")", step: "decode manifest")
    }
}
