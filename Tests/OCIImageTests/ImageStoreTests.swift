import OCIImage
import RunnerOS
import Sandbox
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.enabled(if: Host.isRoot, "needs root to restore ownership and create overlay whiteouts"))
struct ImageStoreTests {
    func withStore<T>(_ body: (ImageStore) throws -> T) throws -> T {
        let dir = "/tmp/fnrunner-test-images-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let store = try ImageStore(dataDirectory: dir)
        defer { try? FileSystem.removeTree(dir) }
        return try body(store)
    }

    @Test func theFlattenedRootfsEqualsUmociUnpack() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            try withStore { store in
                let ours = store.dataDirectory + "/flat"
                // Same content twice: tag 1 mixes gzip, zstd and plain layers; umoci 0.4.7 reads gzip only.
                try store.unpackFlattened(try store.importLayout(images + "/layers", as: "t/layers:1"), into: ours)
                let theirs = store.dataDirectory + "/umoci"
                try Shell.run("umoci unpack --image \(images)/layers:1-gzip \(theirs) >/dev/null")
                let (identical, report) = try ImageFixtures.compare(ours, theirs + "/rootfs")
                #expect(identical, "\(report)")
                #expect(!FileSystem.exists(ours + "/gone"))
                #expect(try FileSystem.list(ours + "/d") == ["z"])
            }
        }
    }

    @Test func aContainerRunsOnTheOverlayOfTheUnpackedLayers() async throws {
        do {
            let images = try await ImageFixtures.directory()
            let dir = "/tmp/fnrunner-test-images-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let store = try ImageStore(dataDirectory: dir)
            defer { try? FileSystem.removeTree(dir) }
            let record = try store.importLayout(images + "/layers", as: "t/layers:1")
            let layers = try store.rootfsLayers(record)
            let process = try ImageProcess.make(config: try store.config(of: record), layers: layers, command: ["id -u; id -g; pwd; ls /d; ls /gone 2>&1; cat /new/file; echo $FROM_IMAGE"])
            #expect(process.argv == ["/bin/sh", "-c", "id -u; id -g; pwd; ls /d; ls /gone 2>&1; cat /new/file; echo $FROM_IMAGE"])
            try await withSandbox("img") { sandbox, _ in
                var spec = ContainerSpec(layers: layers, argv: process.argv)
                spec.env = process.env
                spec.workingDirectory = process.workingDirectory
                spec.uid = 7  // the owner of /new/file (mode 0600): no capability overrides file modes
                spec.gid = 8
                let r = try await runToCompletion(sandbox, spec)
                #expect(r.stdout.hasPrefix("7\n8\n/d\nz\n"), "\(r.stdout) \(r.stderr)")
                #expect(r.stdout.contains("No such file or directory"))
                #expect(r.stdout.hasSuffix("layer 3\n1\n"))
            }
        }
    }

    @Test func theImageUserIsResolvedFromItsOwnPasswdAndGroup() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            try withStore { store in
                let record = try store.importLayout(images + "/layers", as: "t/layers:1")
                let layers = try store.rootfsLayers(record)
                let config = try store.config(of: record)
                let image = try ImageProcess.make(config: config, layers: layers)
                #expect((image.uid, image.gid) == (1234, 2345))
                #expect(image.workingDirectory == "/d")
                let named = try ImageProcess.make(config: config, layers: layers, user: "root:staff")
                #expect((named.uid, named.gid) == (0, 50))
                let numeric = try ImageProcess.make(config: config, layers: layers, user: "42:43")
                #expect((numeric.uid, numeric.gid) == (42, 43))
                #expect(throws: RunnerError.self) { try ImageProcess.make(config: config, layers: layers, user: "nobody-here") }
                #expect(throws: RunnerError.self) { try ImageProcess.make(config: config, layers: layers, user: "app:nogroup") }
            }
        }
    }

    @Test func imagesThatDeclareVolumesAreRefusedUnlessAllowed() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            try withStore { store in
                let record = try store.importLayout(images + "/layers", as: "t/layers:volumes")
                let config = try store.config(of: record)
                let error = #expect(throws: RunnerError.self) { try ImageProcess.make(config: config, layers: []) }
                #expect(error?.code == .imageHasVolume && error?.message.hasPrefix("image has Volume definition (/data)") == true)
                #expect(throws: Never.self) { try ImageProcess.make(config: config, layers: [], allowVolumes: true) }
            }
        }
    }

    @Test func anIndexOfIndexesResolvesToThisHostsPlatform() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            try withStore { store in
                let record = try store.importLayout(images + "/nested", as: "t/nested:multi")
                #expect(record.index != nil)
                let flat = store.dataDirectory + "/flat"
                try store.unpackFlattened(record, into: flat)
                #expect(try FileSystem.read(flat + "/platform") == "\(Platform.host.architecture)\n")
            }
        }
    }

    @Test func aDockerArchiveImportsUnderItsOwnTag() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            try withStore { store in
                let archive = store.dataDirectory + "/busybox-docker.tar"
                try Shell.run("skopeo copy --quiet oci:\(images)/layers:1-gzip docker-archive:\(archive):fn-test/archived:2 >/dev/null")
                let record = try store.importDockerArchive(archive, as: nil)
                #expect(record.name == "docker.io/fn-test/archived:2")
                let flat = store.dataDirectory + "/flat"
                try store.unpackFlattened(record, into: flat)
                #expect(try FileSystem.list(flat + "/d") == ["z"])
                #expect(try store.image("fn-test/archived:2") == record)
            }
        }
    }

    @Test func removingAnImageCollectsWhatOnlyItUsed() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            try withStore { store in
                let a = try store.importLayout(images + "/layers", as: "t/layers:1")
                let b = try store.importLayout(images + "/layers", as: "t/layers:1-gzip")
                _ = try store.rootfsLayers(a)
                _ = try store.rootfsLayers(b)
                let before = store.content.allBlobs().count
                let report = try store.remove("t/layers:1")
                #expect(!report.blobs.isEmpty)
                #expect(store.content.allBlobs().count == before - report.blobs.count)
                // Layer 1 and 3 diff IDs are shared with the gzip variant and stay; the zstd blob goes.
                #expect(Set(store.layers.all()) == Set(b.diffIDs))
                #expect(throws: RunnerError.self) { try store.image("t/layers:1") }
                _ = try store.remove("t/layers:1-gzip")
                #expect(store.content.allBlobs().isEmpty)
                #expect(store.layers.all().isEmpty)
            }
        }
    }

    @Test func unknownNamesAndBadLayoutsFailClearly() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            try withStore { store in
                let missing = #expect(throws: RunnerError.self) { try store.image("t/nothing:here") }
                #expect(missing?.code == .notFound)
                let tag = #expect(throws: RunnerError.self) { try store.importLayout(images + "/layers", as: "t/layers:nope") }
                #expect(tag?.message.contains("1-gzip") == true)
                #expect(throws: RunnerError.self) { try store.importLayout("/nonexistent", as: "t/x:1") }
                #expect(throws: RunnerError.self) { try store.importLayout(images + "/hostile", as: "t/x:1") }
            }
        }
    }
}

@Suite(.enabled(if: Host.isRoot, "needs root to mount a small tmpfs and restore ownership"))
struct ImageStoreLimitsTests {
    @Test func theSizeBudgetEvictsTheLeastRecentlyUsedImagesButNotThoseInUse() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            let dir = "/tmp/fnrunner-test-budget-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let store = try ImageStore(dataDirectory: dir)
            defer { try? FileSystem.removeTree(dir) }
            try store.importLayout(images + "/layers", as: "t/a:1")
            try store.importLayout(images + "/nested", as: "t/b:multi")
            try store.importLayout(images + "/layers", as: "t/c:volumes")
            _ = try store.rootfsLayers(try store.image("t/c:volumes"))  // most recently used
            let total = try store.storedBytes()
            // Room for roughly one image: a is in use, so b (least recently used after a) goes first.
            let removed = try store.enforceSizeBudget(maxBytes: total / 2, inUse: ["docker.io/t/a:1"])
            #expect(removed.first == "docker.io/t/b:multi")
            #expect(!removed.contains("docker.io/t/a:1"))
            #expect(try store.storedBytes() <= total / 2 || removed.count == 2)
            #expect((try? store.image("t/a:1")) != nil)
        }
    }

    @Test func dataInUseByAnotherProcessIsKeptUntilALaterCollection() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            let dir = "/tmp/fnrunner-test-lease-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let store = try ImageStore(dataDirectory: dir)
            defer { try? FileSystem.removeTree(dir) }
            let record = try store.importLayout(images + "/layers", as: "t/leased:1")
            _ = try store.rootfsLayers(record)
            // Another process runs a container from the store: it holds a shared lease.
            let holder = try Subprocess(["/usr/bin/flock", "-s", "-o", dir + "/in-use.lock", "/bin/sleep", "30"])
            let stopHolder = {
                _ = try? Shell.run("pkill -KILL -P \(holder.pid) || true")  // its sleep child
                holder.signal(SIGKILL)
                holder.wait()
            }
            defer { stopHolder() }
            // Until the holder has its lease (while the lock is still free).
            for _ in 0..<200 {
                guard (try? await Shell.output("flock -n -x \(dir)/in-use.lock true && echo free")) == "free\n" else { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let report = try store.remove("t/leased:1")
            #expect(report.deferred)
            #expect(record.diffIDs.allSatisfy { store.layers.has($0) }, "layers under a running container stay")
            #expect(throws: RunnerError.self) { try store.image("t/leased:1") }
            stopHolder()
            let later = try store.collectGarbage(keepingLayersInUse: [])
            #expect(!later.deferred)
            #expect(store.layers.all().isEmpty && store.content.allBlobs().isEmpty)
        }
    }

    @Test func aFullDiskDuringAnImportLeavesTheStoreConsistent() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            let dir = "/tmp/fnrunner-test-full-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try FileSystem.makeDirectories(dir)
            defer { try? FileSystem.removeTree(dir) }
            try await Shell.run("mount -t tmpfs -o size=700k tmpfs \(dir)")
            defer { _ = try? Shell.runBlocking("umount \(dir)") }
            let store = try ImageStore(dataDirectory: dir + "/store")
            let error = #expect(throws: RunnerError.self) { try store.importLayout(images + "/layers", as: "t/full:1") }
            #expect(error?.errno == 28 /* ENOSPC */ || error?.description.contains("ENOSPC") == true, "\(String(describing: error))")
            #expect(try store.list().isEmpty)
            #expect(try FileSystem.list(dir + "/store/content/ingest").isEmpty)
            // Every blob that made it in is whole and verifies.
            for blob in store.content.allBlobs() {
                let (digest, _, _) = try Self.inspect(store.content.path(blob))
                #expect(digest == blob)
            }
        }
    }

    @Test func leftoversOfAKilledPullAreClearedAndTheNextPullSucceeds() async throws {
        try await withSharedGate {
            let images = try await ImageFixtures.directory()
            let dir = "/tmp/fnrunner-test-killed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            _ = try ImageStore(dataDirectory: dir)
            defer { try? FileSystem.removeTree(dir) }
            // What a pull killed with -9 leaves: a half-written blob and a half-unpacked layer.
            // (pid 2^22+1 is above the kernel's pid_max, so certainly not alive.)
            try FileSystem.create(dir + "/content/ingest/4194305-123", contents: "half a blob")
            try FileSystem.makeDirectories(dir + "/layers/tmp/4194305-abc-1/usr/bin")
            // A live process's files are left alone (pid 1 is always alive).
            try FileSystem.create(dir + "/content/ingest/1-in-progress", contents: "someone else's blob")
            let store = try ImageStore(dataDirectory: dir)
            #expect(try FileSystem.list(dir + "/content/ingest") == ["1-in-progress"])
            #expect(try FileSystem.list(dir + "/layers/tmp").isEmpty)
            let record = try store.importLayout(images + "/layers", as: "t/again:1")
            #expect(try store.rootfsLayers(record).count == 3)
        }
    }

    static func inspect(_ path: String) throws -> (Digest, Int64, Bool) {
        let bytes = try Shell.output("sha256sum \(path)").split(separator: " ")[0]
        return (try Digest.parse("sha256:" + bytes), 0, false)
    }
}
