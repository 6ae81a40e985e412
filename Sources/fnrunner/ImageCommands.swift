import ArgumentParser
import CLIOptions
import FoundationEssentials
import Logging
import OCIImage
import RunnerOS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension StoreOptions {
    /// The image's record, pulling it first if the store does not have it.
    func imageOrPull(_ reference: String, _ store: ImageStore, _ logger: Logger) throws(RunnerError) -> ImageRecord {
        do {
            return try store.image(reference)
        } catch where error.code == .notFound {
            return try puller(store, logger).pullNow(try ImageReference.parse(reference), progress: PullProgressPrinter.make())
        }
    }
}

/// Runs `body`, turning a RunnerError into "fnrunner: <message>" and exit status 1.
func runOrExit(_ body: () throws(RunnerError) -> Void) {
    do {
        try body()
    } catch {
        printError("fnrunner: \(error)")
        Glibc.exit(1)
    }
}

func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import an image from an OCI layout directory or a docker-archive tarball.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var runtime: RuntimeOptions

    @Argument(help: "An OCI image layout directory (with index.json) or a `docker save` tarball.")
    var path: String

    @Option(help: "The name to store it under (required for OCI layouts).")
    var name: String?

    func run() async throws {
        let logger = Logger(label: "fnrunner.import")
        var imported: (ImageStore, ImageRecord)?
        runOrExit { () throws(RunnerError) in
            let images = try store.open(logger)
            let record: ImageRecord
            if FileSystem.isDirectory(path) {
                guard let name else {
                    throw RunnerError(.invalidArgument, "--name is required to import an OCI layout", step: "import")
                }
                record = try images.importLayout(path, as: name)
            } else if FileSystem.exists(path) {
                record = try images.importDockerArchive(path, as: name)
            } else {
                throw RunnerError(.notFound, "\(path) does not exist", step: "import")
            }
            print("\(record.name) \(record.manifest)")
            imported = (images, record)
        }
        if let imported { await runtime.buildBytecode(imported.1, in: imported.0) }
    }
}

struct PullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Pull an image from a registry.")

    @OptionGroup var store: StoreOptions
    @OptionGroup var runtime: RuntimeOptions

    @Argument(help: "Image reference (registry/repository:tag or @sha256:...).")
    var reference: String

    func run() async throws {
        let logger = Logger(label: "fnrunner.pull")
        var pulled: (ImageStore, ImageRecord)?
        runOrExit { () throws(RunnerError) in
            let images = try store.open(logger)
            let started = MonotonicClock.nowNanos()
            let record = try store.puller(images, logger).pullNow(try ImageReference.parse(reference), progress: PullProgressPrinter.make())
            PullProgressPrinter.finish()
            let ms = (MonotonicClock.nowNanos() - started) / 1_000_000
            print("\(record.name) \(record.manifest) (\(record.layers.count) layers, \(formatBytes(record.size)), \(ms) ms)")
            pulled = (images, record)
        }
        if let pulled { await runtime.buildBytecode(pulled.1, in: pulled.0) }
    }
}

/// Progress on a terminal (stderr), nothing otherwise.
enum PullProgressPrinter {
    static func make() -> (@Sendable (ImagePuller.Progress) -> Void)? {
        guard isatty(2) != 0 else { return nil }
        return { p in
            var line = "\rblob \(p.blobIndex) \(p.blob.hex.prefix(12)): \(formatBytes(p.bytes)) / \(formatBytes(p.total))\u{1B}[K"
            line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
        }
    }

    static func finish() {
        if isatty(2) != 0 { _ = Glibc.write(2, "\r\u{1B}[K", 4) }
    }
}

struct ImagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "images", abstract: "List the images in the store.")

    @OptionGroup var store: StoreOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        runOrExit { () throws(RunnerError) in
            let records = try store.open(Logger(label: "fnrunner.images")).list()
            if json {
                struct Row: Encodable { var name: String; var digest: String; var size: Int64; var lastUsed: Int64 }
                let rows = records.map { Row(name: $0.name, digest: $0.manifest.description, size: $0.size, lastUsed: $0.lastUsed) }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                if let data = try? encoder.encode(rows) { print(String(decoding: data, as: UTF8.self)) }
                return
            }
            print("NAME\tDIGEST\tSIZE\tLAST USED")
            for r in records {
                print("\(r.name)\t\(r.manifest.description.prefix(19))\t\(formatBytes(r.size))\t\(formatAge(r.lastUsed))")
            }
        }
    }
}

struct RemoveImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rmi", abstract: "Remove an image and the data only it used.")

    @OptionGroup var store: StoreOptions

    @Argument(help: "Image reference.")
    var reference: String

    func run() throws {
        runOrExit { () throws(RunnerError) in
            let report = try store.open(Logger(label: "fnrunner.rmi")).remove(reference)
            if report.deferred {
                print("removed \(reference); its data stays until `fnrunner gc` while the store is in use")
            } else {
                print("removed \(reference): \(report.blobs.count) blobs (\(formatBytes(report.bytes))), \(report.layers.count) unpacked layers")
            }
        }
    }
}

struct GarbageCollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove image data no image uses; with --max-size, evict least recently used images to fit.")

    @OptionGroup var store: StoreOptions

    @Option(name: .customLong("max-size"), help: "Size budget in MiB for the images' blobs.")
    var maxSizeMiB: Int64?

    func run() throws {
        runOrExit { () throws(RunnerError) in
            let images = try store.open(Logger(label: "fnrunner.gc"))
            if let maxSizeMiB {
                for name in try images.enforceSizeBudget(maxBytes: maxSizeMiB << 20) { print("evicted \(name)") }
            }
            let report = try images.collectGarbage(keepingLayersInUse: [])
            print("removed \(report.blobs.count) blobs (\(formatBytes(report.bytes))), \(report.layers.count) unpacked layers; \(formatBytes(try images.storedBytes())) in use")
        }
    }
}

struct UnpackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpack", abstract: "Write an image's flattened root filesystem into a directory.")

    @OptionGroup var store: StoreOptions

    @Argument(help: "Image reference.")
    var reference: String

    @Argument(help: "Target directory (missing or empty).")
    var directory: String

    func run() throws {
        runOrExit { () throws(RunnerError) in
            let images = try store.open(Logger(label: "fnrunner.unpack"))
            try images.unpackFlattened(try images.image(reference), into: directory)
        }
    }
}

func formatBytes(_ n: Int64) -> String {
    if n >= 1 << 20 {
        let tenths = (n * 10) >> 20
        return "\(tenths / 10).\(tenths % 10) MiB"
    }
    if n >= 1 << 10 { return "\(n >> 10) KiB" }
    return "\(n) B"
}

/// "12s ago", "3m ago", "5h ago", "2d ago".
func formatAge(_ unixTime: Int64) -> String {
    let age = max(0, Int64(time(nil)) - unixTime)
    if age < 60 { return "\(age)s ago" }
    if age < 3600 { return "\(age / 60)m ago" }
    if age < 86400 { return "\(age / 3600)h ago" }
    return "\(age / 86400)d ago"
}
