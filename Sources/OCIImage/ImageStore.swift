import Logging
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The runner's images under one data directory: content-addressed blobs, unpacked layers and
/// the catalog of names. Everything that turns an image name into a container rootfs goes
/// through here.
public final class ImageStore: Sendable {
    public let dataDirectory: String
    public let content: ContentStore
    public let layers: LayerStore
    public let catalog: ImageCatalog
    public let bytecode: BytecodeLayers
    /// Whether containers get their image's bytecode layer (FN_PYTHON_BYTECODE).
    public let stacksBytecode: Bool
    let logger: Logger

    public init(dataDirectory: String, stacksBytecode: Bool = true, logger: Logger = Logger(label: "fnrunner.images")) throws(RunnerError) {
        self.dataDirectory = dataDirectory
        try FileSystem.makeDirectories(dataDirectory, mode: 0o700)
        content = try ContentStore(root: dataDirectory + "/content")
        layers = try LayerStore(root: dataDirectory + "/layers")
        bytecode = try BytecodeLayers(root: dataDirectory + "/bytecode")
        catalog = ImageCatalog(root: dataDirectory)
        self.stacksBytecode = stacksBytecode
        self.logger = logger
    }

    /// The record for a name (normalised first), or a not-found error that says how to get it.
    public func image(_ reference: String) throws(RunnerError) -> ImageRecord {
        let ref = try ImageReference.parse(reference)
        if let r = try catalog.get(ref.description) { return r }
        if ref.digest != nil, let r = try catalog.all().first(where: { $0.manifest == ref.digest || $0.index == ref.digest }) {
            return r
        }
        throw RunnerError(.notFound, "image \(ref) is not in the store: pull or import it first", step: "find image")
    }

    public func list() throws(RunnerError) -> [ImageRecord] { try catalog.all() }

    public func config(of record: ImageRecord) throws(RunnerError) -> ImageConfig {
        try ImageConfig.decode(content.read(record.config))
    }

    /// The layer directories a container stacks, top first, unpacking any that are missing, and
    /// marks the image used now: the image's own, under its bytecode layer when it has one.
    public func rootfsLayers(_ record: ImageRecord) throws(RunnerError) -> [String] {
        let dirs = try imageLayers(record)
        if stacksBytecode, let layer = bytecode.layer(record.config) { return [layer] + dirs }
        return dirs
    }

    /// The image's own layer directories, top first, unpacking any that are missing, and marks
    /// the image used now.
    public func imageLayers(_ record: ImageRecord) throws(RunnerError) -> [String] {
        var dirs: [String] = []
        for (layer, diffID) in zip(record.layers, record.diffIDs) {
            if !content.has(layer.digest) && !layers.has(diffID) {
                throw RunnerError(.notFound, "layer \(layer.digest) of \(record.name) is missing from the store", step: "prepare rootfs")
            }
            dirs.append(try layers.ensure(diffID: diffID, blob: content.path(layer.digest)))
        }
        if Int64(time(nil)) - record.lastUsed >= Self.lastUsedResolutionSeconds { try touch(record.name) }
        return dirs.reversed()
    }

    /// LRU needs no finer clock than this; it keeps a container start from rewriting the catalog.
    static let lastUsedResolutionSeconds: Int64 = 60

    /// Materialises the flattened rootfs in `target` (empty or missing), whiteouts applied.
    public func unpackFlattened(_ record: ImageRecord, into target: String) throws(RunnerError) {
        try FileSystem.makeDirectories(target)
        if !(try FileSystem.list(target)).isEmpty {
            throw RunnerError(.invalidArgument, "unpack target \(target) is not empty", step: "unpack image")
        }
        for (layer, diffID) in zip(record.layers, record.diffIDs) {
            let result = try LayerUnpacker().unpack(blob: content.path(layer.digest), into: target, mode: .flatten)
            if result.diffID != diffID {
                throw RunnerError(.invalidState, "layer \(layer.digest) does not match diff ID \(diffID)", step: "unpack image")
            }
        }
    }

    func touch(_ name: String) throws(RunnerError) {
        let now = Int64(time(nil))
        try catalog.update { (images: inout [String: ImageRecord]) throws(RunnerError) in images[name]?.lastUsed = now }
    }

    /// Records `record` under its name (replacing an older record of the same name).
    func register(_ record: ImageRecord) throws(RunnerError) {
        try catalog.update { (images: inout [String: ImageRecord]) throws(RunnerError) in images[record.name] = record }
    }

    /// Forgets a name, then removes whatever no remaining image needs. Returns what was removed.
    @discardableResult
    public func remove(_ reference: String) throws(RunnerError) -> GarbageReport {
        let record = try image(reference)
        try catalog.update { (images: inout [String: ImageRecord]) throws(RunnerError) in images[record.name] = nil }
        return try collectGarbage(keepingLayersInUse: [])
    }

    /// Bytes of the distinct blobs the catalog's images use.
    public func storedBytes() throws(RunnerError) -> Int64 {
        var seen = Set<Digest>()
        var total: Int64 = 0
        for image in try catalog.all() {
            for blob in image.blobs where seen.insert(blob).inserted { total += content.size(blob) ?? 0 }
        }
        return total
    }

    /// Keeps the store under `maxBytes` (like Fn's FN_IMAGE_CLEAN_MAX_SIZE): removes the least
    /// recently used images, never one in `inUse` (images of live containers), until it fits.
    /// Returns the names removed.
    @discardableResult
    public func enforceSizeBudget(maxBytes: Int64, inUse: Set<String> = []) throws(RunnerError) -> [String] {
        var removed: [String] = []
        while try storedBytes() > maxBytes {
            let candidates = try catalog.all().filter { !inUse.contains($0.name) }.sorted { $0.lastUsed < $1.lastUsed }
            guard let victim = candidates.first else { break }
            try catalog.update { (images: inout [String: ImageRecord]) throws(RunnerError) in images[victim.name] = nil }
            removed.append(victim.name)
            _ = try collectGarbage(keepingLayersInUse: [])
        }
        if !removed.isEmpty { logger.notice("evicted images to stay under the size budget", metadata: ["images": "\(removed)"]) }
        return removed
    }

    public struct GarbageReport: Sendable, Equatable {
        public var blobs: [Digest] = []
        public var layers: [Digest] = []
        /// Images whose bytecode layer (or skip record) went.
        public var bytecodeLayers: [Digest] = []
        public var bytes: Int64 = 0
        /// Another process was pulling or running containers: nothing was removed this time.
        public var deferred = false
    }

    var leasePath: String { dataDirectory + "/in-use.lock" }

    /// Held while pulling into the store or running containers from it (see StoreLease).
    public func lease() throws(RunnerError) -> StoreLease {
        try StoreLease(path: leasePath, exclusive: false, wait: true)
    }

    /// Removes blobs and unpacked layers that no image references (and that are not in
    /// `inUse`, the layers of running containers).
    public func collectGarbage(keepingLayersInUse inUse: Set<Digest>) throws(RunnerError) -> GarbageReport {
        let exclusive: StoreLease
        do {
            exclusive = try StoreLease(path: leasePath, exclusive: true, wait: false)
        } catch where error.errno == EWOULDBLOCK {
            logger.notice("image data kept for a later collection: the store is in use by another process")
            return GarbageReport(deferred: true)
        }
        defer { exclusive.release() }
        let images = try catalog.all()
        let keepBlobs = Set(images.flatMap(\.blobs))
        let keepLayers = Set(images.flatMap(\.diffIDs)).union(inUse)
        var report = GarbageReport()
        for blob in content.allBlobs() where !keepBlobs.contains(blob) {
            report.bytes += content.size(blob) ?? 0
            content.delete(blob)
            report.blobs.append(blob)
        }
        for layer in layers.all() where !keepLayers.contains(layer) {
            try layers.remove(layer)
            report.layers.append(layer)
        }
        let keepBytecode = Set(images.map(\.config))
        for image in bytecode.all() where !keepBytecode.contains(image) {
            try bytecode.remove(image)
            report.bytecodeLayers.append(image)
        }
        if !report.blobs.isEmpty || !report.layers.isEmpty {
            logger.info("removed unused image data", metadata: ["blobs": "\(report.blobs.count)", "layers": "\(report.layers.count)"])
        }
        return report
    }
}
