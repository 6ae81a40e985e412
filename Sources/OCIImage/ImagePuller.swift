import Logging
import RunnerOS
import Synchronization

/// Pulls images from registries into an `ImageStore`.
///
/// Concurrent pulls of the same name share one download; pulls of different images run in
/// parallel up to a bound. Blobs already in the store are not fetched again, and the layers are
/// unpacked as part of the pull, so a container's first start finds its rootfs ready.
public final class ImagePuller: Sendable {
    public struct Progress: Sendable {
        public var blob: Digest
        public var blobIndex: Int
        public var blobCount: Int
        public var bytes: Int64
        public var total: Int64
    }

    public let store: ImageStore
    let options: RegistryOptions
    let logger: Logger
    private let limit: Int

    private struct State {
        var inFlight: [String: [CheckedContinuation<Result<ImageRecord, RunnerError>?, Never>]] = [:]
        var running = 0
        var queued: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    public init(store: ImageStore, options: RegistryOptions, maxConcurrentPulls: Int = 3, logger: Logger = Logger(label: "fnrunner.pull")) {
        self.store = store
        self.options = options
        self.limit = max(1, maxConcurrentPulls)
        self.logger = logger
    }

    /// Pulls `reference` (joining a pull of the same name already under way).
    public func pull(_ reference: String, progress: (@Sendable (Progress) -> Void)? = nil) async throws(RunnerError) -> ImageRecord {
        let ref = try ImageReference.parse(reference)
        let key = ref.description
        let joined: Result<ImageRecord, RunnerError>? = await withCheckedContinuation { c in
            let first = state.withLock { s -> Bool in
                if s.inFlight[key] != nil {
                    s.inFlight[key]!.append(c)
                    return false
                }
                s.inFlight[key] = []
                return true
            }
            if first { c.resume(returning: nil) }
        }
        if let joined { return try joined.get() }

        await acquireSlot()
        let result: Result<ImageRecord, RunnerError>
        do {
            result = .success(try await BlockingThread.run { () throws(RunnerError) in try self.pullNow(ref, progress: progress) })
        } catch {
            result = .failure(error)
        }
        releaseSlot()
        let waiters = state.withLock { $0.inFlight.removeValue(forKey: key) ?? [] }
        for w in waiters { w.resume(returning: result) }
        return try result.get()
    }

    private func acquireSlot() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let go = state.withLock { s -> Bool in
                if s.running < limit {
                    s.running += 1
                    return true
                }
                s.queued.append(c)
                return false
            }
            if go { c.resume() }
        }
    }

    private func releaseSlot() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.queued.isEmpty {
                s.running -= 1
                return nil
            }
            return s.queued.removeFirst()
        }
        next?.resume()
    }

    /// The pull itself, blocking (the CLI calls it directly).
    public func pullNow(_ ref: ImageReference, progress: (@Sendable (Progress) -> Void)? = nil) throws(RunnerError) -> ImageRecord {
        // Blobs are stored before the record that keeps them: no collection may run in between.
        let lease = try store.lease()
        defer { lease.release() }
        let client = RegistryClient(registry: ref.domain, options: options)
        let top = try client.manifest(ref.path, reference: ref.manifestReference)
        try store.content.write(top.bytes, expected: top.digest)
        let descriptor = Descriptor(mediaType: top.mediaType ?? "", digest: top.digest, size: Int64(top.bytes.count))
        var blobIndex = 0
        let record = try store.resolve(descriptor, name: ref.description) { d throws(RunnerError) in
            if self.store.content.has(d.digest) { return }
            if MediaType.isIndex(d.mediaType) || MediaType.isManifest(d.mediaType) {
                let m = try client.manifest(ref.path, reference: d.digest.description)
                try self.store.content.write(m.bytes, expected: d.digest)
                return
            }
            blobIndex += 1
            let index = blobIndex
            try client.blob(ref.path, d, into: self.store.content) { bytes in
                progress?(Progress(blob: d.digest, blobIndex: index, blobCount: 0, bytes: bytes, total: d.size))
            }
        }
        _ = try store.rootfsLayers(record)
        logger.info("pulled image", metadata: ["image": "\(record.name)", "manifest": "\(record.manifest)"])
        return record
    }
}
