import FoundationEssentials
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension ImageStore {
    static let refNameAnnotation = "org.opencontainers.image.ref.name"

    /// Imports an image from an OCI image layout directory (`oci-layout`, `index.json`, `blobs/`).
    /// Every blob is verified against its digest on the way in.
    @discardableResult
    public func importLayout(_ layout: String, as name: String) throws(RunnerError) -> ImageRecord {
        let ref = try ImageReference.parse(name)
        guard FileSystem.exists(layout + "/oci-layout"), FileSystem.exists(layout + "/index.json") else {
            throw RunnerError(.invalidArgument, "\(layout) is not an OCI image layout (no oci-layout or index.json)", step: "import layout")
        }
        let index: ImageIndex
        do {
            index = try JSONDecoder().decode(ImageIndex.self, from: Data(try FileSystem.read(layout + "/index.json").utf8))
        } catch let e as RunnerError {
            throw e
        } catch {
            throw RunnerError(.invalidArgument, "\(layout)/index.json is not a valid OCI index: \(error)", step: "import layout")
        }
        let entry = try chooseEntry(index, for: ref, layout: layout)
        let blob: (Descriptor) throws(RunnerError) -> Void = { d throws(RunnerError) in
            let source = layout + "/blobs/\(d.digest.algorithm)/\(d.digest.hex)"
            guard FileSystem.exists(source) else {
                throw RunnerError(.notFound, "blob \(d.digest) is missing from \(layout)", step: "import layout")
            }
            try self.content.ingestFile(source, expected: d.digest, size: d.size)
        }
        return try resolve(entry, name: ref.description, fetch: blob)
    }

    private func chooseEntry(_ index: ImageIndex, for ref: ImageReference, layout: String) throws(RunnerError) -> Descriptor {
        if index.manifests.count == 1 { return index.manifests[0] }
        let wanted = [ref.tag, ref.description].compactMap { $0 }
        if let match = index.manifests.first(where: { d in wanted.contains(d.annotations?[Self.refNameAnnotation] ?? "\u{0}") }) {
            return match
        }
        let names = index.manifests.compactMap { $0.annotations?[Self.refNameAnnotation] }
        throw RunnerError(
            .notFound, "\(layout) has no image tagged \(ref.tag ?? "?"); it has: \(names.joined(separator: ", "))",
            step: "import layout")
    }

    /// Follows an index (choosing this host's platform) down to a manifest, fetching each blob
    /// with `fetch`, and records the image.
    func resolve(_ top: Descriptor, name: String, fetch: (Descriptor) throws(RunnerError) -> Void) throws(RunnerError) -> ImageRecord {
        var descriptor = top
        var indexDigest: Digest?
        var manifest: Manifest?
        for _ in 0..<4 {
            try fetch(descriptor)
            switch try ManifestDocument.decode(content.read(descriptor.digest), mediaType: descriptor.mediaType) {
            case .index(let index):
                indexDigest = descriptor.digest
                guard let chosen = index.manifest(for: .host) else {
                    let platforms = index.manifests.compactMap { $0.platform.map { "\($0.os)/\($0.architecture)" } }
                    throw RunnerError(
                        .notFound, "image \(name) has no manifest for \(Platform.host.os)/\(Platform.host.architecture) (it has \(platforms.joined(separator: ", ")))",
                        step: "select platform")
                }
                descriptor = chosen
            case .manifest(let m):
                manifest = m
            }
            if manifest != nil { break }
        }
        guard let manifest else { throw RunnerError(.invalidArgument, "image \(name): indexes nested too deeply", step: "resolve image") }
        try fetch(manifest.config)
        let config = try ImageConfig.decode(content.read(manifest.config.digest))
        if config.rootfs.diff_ids.count != manifest.layers.count {
            throw RunnerError(
                .invalidArgument, "image \(name): \(manifest.layers.count) layers but \(config.rootfs.diff_ids.count) diff IDs",
                step: "resolve image")
        }
        for layer in manifest.layers {
            if MediaType.layerCompression(layer.mediaType) == nil {
                throw RunnerError(.unsupported, "image \(name): unsupported layer media type \(layer.mediaType)", step: "resolve image")
            }
            try fetch(layer)
        }
        let now = Int64(time(nil))
        let record = ImageRecord(
            name: name, manifest: descriptor.digest, index: indexDigest, config: manifest.config.digest, layers: manifest.layers,
            diffIDs: config.rootfs.diff_ids,
            size: manifest.layers.reduce(manifest.config.size + descriptor.size) { $0 + $1.size }, created: now, lastUsed: now)
        try register(record)
        return record
    }

    /// Imports a `docker save` / docker-archive tarball. Without `name`, the archive's own tag.
    @discardableResult
    public func importDockerArchive(_ archive: String, as name: String?) throws(RunnerError) -> ImageRecord {
        struct Entry: Decodable {
            var Config: String
            var RepoTags: [String]?
            var Layers: [String]
        }
        let scratch = dataDirectory + "/import-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectory(scratch, mode: 0o700)
        defer { try? FileSystem.removeTree(scratch) }
        _ = try LayerUnpacker().unpack(blob: archive, into: scratch, mode: .flatten)
        guard FileSystem.exists(scratch + "/manifest.json") else {
            throw RunnerError(.invalidArgument, "\(archive) is not a docker-archive (no manifest.json)", step: "import archive")
        }
        let entries: [Entry]
        do {
            entries = try JSONDecoder().decode([Entry].self, from: Data(try FileSystem.read(scratch + "/manifest.json").utf8))
        } catch let e as RunnerError {
            throw e
        } catch {
            throw RunnerError(.invalidArgument, "\(archive): manifest.json is not valid: \(error)", step: "import archive")
        }
        let wanted = try name.map { n throws(RunnerError) in try ImageReference.parse(n).description }
        let normalizedTags: (Entry) -> [String] = { e in (e.RepoTags ?? []).compactMap { try? ImageReference.parse($0).description } }
        let chosen: Entry
        if let wanted, let e = entries.first(where: { normalizedTags($0).contains(wanted) }) {
            chosen = e
        } else if entries.count == 1 {
            chosen = entries[0]
        } else {
            throw RunnerError(.notFound, "\(archive) holds \(entries.count) images; name one with --name", step: "import archive")
        }
        guard let imageName = wanted ?? normalizedTags(chosen).first else {
            throw RunnerError(.invalidArgument, "\(archive) has no tag for its image; give one with --name", step: "import archive")
        }
        // A member the manifest names must be a regular file reached without symlinks: the archive
        // could otherwise point us at /dev/zero, a FIFO or a host file.
        func member(_ relative: String) throws(RunnerError) -> String {
            let clean = try ApplyState.clean(relative)
            var path = scratch
            for part in clean.split(separator: "/") {
                path += "/" + part
                if !FileSystem.exists(path) { throw RunnerError(.notFound, "\(archive) lacks \(relative)", step: "import archive") }
                if !FileSystem.isRealDirectory(path) && !FileSystem.isRegularFile(path) {
                    throw RunnerError(.invalidArgument, "\(archive): \(relative) is not a regular file in the archive", step: "import archive")
                }
            }
            guard !clean.isEmpty, FileSystem.isRegularFile(path) else {
                throw RunnerError(.invalidArgument, "\(archive): \(relative) is not a regular file in the archive", step: "import archive")
            }
            return path
        }
        let configPath = try member(chosen.Config)
        var configStat = stat()
        if stat(configPath, &configStat) != 0 || configStat.st_size > 4 << 20 {
            throw RunnerError(.invalidArgument, "\(archive): the image config is larger than 4 MiB", step: "import archive")
        }
        let configBytes = try content.readFile(configPath)
        let configDigest = try content.write(configBytes)
        var layerDescriptors: [Descriptor] = []
        for layer in chosen.Layers {
            let path = try member(layer)
            let (digest, size, gzip) = try Self.inspect(path)
            try content.ingestFile(path, expected: digest, size: size)
            layerDescriptors.append(
                Descriptor(
                    mediaType: gzip ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : "application/vnd.docker.image.rootfs.diff.tar",
                    digest: digest, size: size))
        }
        let manifest = Manifest(
            mediaType: MediaType.dockerManifest,
            config: Descriptor(mediaType: MediaType.dockerConfig, digest: configDigest, size: Int64(configBytes.count)),
            layers: layerDescriptors)
        let manifestBytes: [UInt8]
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            manifestBytes = Array(try encoder.encode(manifest))
        } catch {
            throw RunnerError(.system, "cannot encode manifest: \(error)", step: "import archive")
        }
        let manifestDigest = try content.write(manifestBytes)
        return try resolve(
            Descriptor(mediaType: MediaType.dockerManifest, digest: manifestDigest, size: Int64(manifestBytes.count)),
            name: imageName, fetch: { _ throws(RunnerError) in })
    }

    /// Digest, size and whether the file is gzip-compressed.
    static func inspect(_ path: String) throws(RunnerError) -> (Digest, Int64, Bool) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .system("open", errno: errno, "cannot open \(path)") }
        defer { close(fd) }
        let hasher = SHA256Hasher()
        var size: Int64 = 0
        var first: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw .system("read", errno: errno, "cannot read \(path)") }
            if n == 0 { break }
            if first.count < 2 { first.append(contentsOf: buf[0..<min(n, 2 - first.count)]) }
            buf.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            size += Int64(n)
        }
        return (hasher.finish(), size, first == [0x1f, 0x8b])
    }
}
