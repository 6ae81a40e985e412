/// What the runner knows about one image name.
public struct ImageRecord: Codable, Sendable, Equatable {
    /// The normalised reference it was pulled or imported as.
    public var name: String
    /// The manifest chosen for this host (from an index, if the name pointed at one).
    public var manifest: Digest
    /// The index the manifest came from, if any.
    public var index: Digest?
    public var config: Digest
    /// Layer blobs, bottom first.
    public var layers: [Descriptor]
    /// Diff IDs (digests of the uncompressed layers), bottom first.
    public var diffIDs: [Digest]
    /// Bytes of all blobs (compressed layers + config + manifests).
    public var size: Int64
    public var created: Int64
    public var lastUsed: Int64

    /// Every blob the image needs kept.
    public var blobs: [Digest] { [manifest, config] + (index.map { [$0] } ?? []) + layers.map(\.digest) }
}
