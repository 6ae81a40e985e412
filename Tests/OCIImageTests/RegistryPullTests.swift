import OCIImage
import RunnerOS
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Pulls from a real registry (`docker-registry`) on loopback, images pushed with skopeo.
@Suite(.enabled(if: Host.isRoot, "needs root to restore ownership and create overlay whiteouts"))
struct RegistryPullTests {
    func withStore<T>(_ body: (ImageStore) async throws -> T) async throws -> T {
        let dir = "/tmp/fnrunner-test-pull-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let store = try ImageStore(dataDirectory: dir)
        defer { try? FileSystem.removeTree(dir) }
        return try await body(store)
    }

    func login(_ registry: RegistryServer) -> RegistryCredentials {
        RegistryCredentials(entries: [(registry.host, .init(username: RegistryServer.username, password: RegistryServer.password))])
    }

    @Test func imagesArePulledByTagByDigestAndFromAnIndexInEveryFormat() async throws {
        try await withSharedGate {
            let fixtures = try await ImageFixtures.directory()
            let registry = try await RegistryServer(.plain)
            defer { registry.stop() }
            try await registry.push("oci:\(fixtures)/layers:1", as: "fn-test/layers:oci", extra: "--preserve-digests")
            try await registry.push("oci:\(fixtures)/layers:1-gzip", as: "fn-test/layers:v2s2", extra: "--format v2s2")
            try await registry.push("oci:\(fixtures)/nested:multi", as: "fn-test/nested:multi", extra: "--all")
            try await withStore { store in
                let puller = ImagePuller(store: store, options: RegistryOptions())
                for tag in ["oci", "v2s2"] {
                    let record = try await puller.pull("\(registry.host)/fn-test/layers:\(tag)")
                    let flat = store.dataDirectory + "/flat-\(tag)"
                    try store.unpackFlattened(record, into: flat)
                    #expect(try FileSystem.list(flat + "/d") == ["z"], "\(tag)")
                    #expect(!FileSystem.exists(flat + "/gone"))
                    #expect(try FileSystem.read(flat + "/new/file") == "layer 3\n")
                    // The layers were unpacked by the pull: a container start finds them ready.
                    #expect(record.diffIDs.allSatisfy { store.layers.has($0) })
                }
                let byTag = try store.image("\(registry.host)/fn-test/layers:oci")
                #expect(byTag.layers.map(\.mediaType) == [
                    "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar+zstd",
                    "application/vnd.oci.image.layer.v1.tar",
                ])
                let v2s2 = try store.image("\(registry.host)/fn-test/layers:v2s2").layers.map(\.mediaType)
                #expect(v2s2.allSatisfy { $0.hasPrefix("application/vnd.docker.image.rootfs.diff.tar") }, "\(v2s2)")
                let byDigest = try await puller.pull("\(registry.host)/fn-test/layers@\(byTag.manifest)")
                #expect(byDigest.manifest == byTag.manifest)
                #expect(byDigest.name == "\(registry.host)/fn-test/layers@\(byTag.manifest)")

                let multi = try await puller.pull("\(registry.host)/fn-test/nested:multi")
                #expect(multi.index != nil)
                let flat = store.dataDirectory + "/flat-multi"
                try store.unpackFlattened(multi, into: flat)
                #expect(try FileSystem.read(flat + "/platform") == "\(Platform.host.architecture)\n")
            }
        }
    }

    @Test func aNameTheRegistryDoesNotHaveIsAClearNotFound() async throws {
        try await withSharedGate {
            let registry = try await RegistryServer(.plain)
            defer { registry.stop() }
            try await withStore { store in
                let error = await #expect(throws: RunnerError.self) {
                    _ = try await ImagePuller(store: store, options: RegistryOptions()).pull("\(registry.host)/fn-test/none:1")
                }
                #expect(error?.code == .notFound)
                #expect(error?.message.contains("MANIFEST_UNKNOWN") == true || error?.message.contains("NAME_UNKNOWN") == true, "\(String(describing: error))")
            }
        }
    }

    @Test func basicAuthPullsWithCredentialsAndRefusesWithoutOrWithWrongOnes() async throws {
        try await withSharedGate {
            let fixtures = try await ImageFixtures.directory()
            let registry = try await RegistryServer(.basicAuth)
            defer { registry.stop() }
            try await registry.push("oci:\(fixtures)/layers:1-gzip", as: "fn-test/private:1")
            let ref = "\(registry.host)/fn-test/private:1"
            try await withStore { store in
                let none = await #expect(throws: RunnerError.self) { _ = try await ImagePuller(store: store, options: RegistryOptions()).pull(ref) }
                #expect(none?.code == .unauthorized)
                #expect(none?.message.contains("requires a login") == true)

                let wrong = RegistryCredentials(entries: [(registry.host, .init(username: "fnuser", password: "wrong"))])
                let refused = await #expect(throws: RunnerError.self) {
                    _ = try await ImagePuller(store: store, options: RegistryOptions(credentials: wrong)).pull(ref)
                }
                #expect(refused?.code == .unauthorized)
                #expect(refused?.message.contains("401") == true, "\(String(describing: refused))")
                #expect(try store.list().isEmpty)

                let record = try await ImagePuller(store: store, options: RegistryOptions(credentials: login(registry))).pull(ref)
                #expect(record.layers.count == 3)
            }
        }
    }

    @Test func tlsIsVerifiedAgainstTheRegistrysCAFromTheCertsDirectory() async throws {
        try await withSharedGate {
            let fixtures = try await ImageFixtures.directory()
            let registry = try await RegistryServer(.tlsAuth)
            defer { registry.stop() }
            try await registry.push("oci:\(fixtures)/layers:1-gzip", as: "fn-test/tls:1")
            let ref = "\(registry.host)/fn-test/tls:1"
            try await withStore { store in
                let untrusted = RegistryOptions(certsDirectory: "/nonexistent", credentials: login(registry))
                let error = await #expect(throws: RunnerError.self) { _ = try await ImagePuller(store: store, options: untrusted).pull(ref) }
                #expect(error?.code == .unavailable, "\(String(describing: error))")
                let trusted = RegistryOptions(certsDirectory: registry.certsDirectory, credentials: login(registry))
                let record = try await ImagePuller(store: store, options: trusted).pull(ref)
                #expect(record.name == ref)
            }
        }
    }

    @Test func concurrentPullsOfOneImageShareOneDownload() async throws {
        try await withSharedGate {
            let fixtures = try await ImageFixtures.directory()
            let registry = try await RegistryServer(.plain)
            defer { registry.stop() }
            try await registry.push("oci:\(fixtures)/layers:1-gzip", as: "fn-test/shared:1")
            try await withStore { store in
                let puller = ImagePuller(store: store, options: RegistryOptions())
                let ref = "\(registry.host)/fn-test/shared:1"
                async let a = puller.pull(ref)
                async let b = puller.pull(ref)
                async let c = puller.pull(ref)
                let records = try await [a, b, c]
                #expect(Set(records.map(\.manifest)).count == 1)
                for layer in records[0].layers {
                    #expect(registry.blobGets(layer.digest.description) == 1, "layer \(layer.digest) fetched more than once")
                }
            }
        }
    }

    @Test func aCorruptedBlobInTheRegistryIsRejectedAndNeverStored() async throws {
        try await withSharedGate {
            let fixtures = try await ImageFixtures.directory()
            let registry = try await RegistryServer(.plain)
            defer { registry.stop() }
            try await registry.push("oci:\(fixtures)/layers:1-gzip", as: "fn-test/corrupt:1")
            try await withStore { store in
                // Learn the layer digests, then damage the biggest layer inside the registry's storage.
                let probe = try await ImagePuller(store: store, options: RegistryOptions()).pull("\(registry.host)/fn-test/corrupt:1")
                let victim = probe.layers.max { $0.size < $1.size }!.digest
                _ = try store.remove(probe.name)
                let data = "\(registry.directory)/data/docker/registry/v2/blobs/sha256/\(victim.hex.prefix(2))/\(victim.hex)/data"
                try await Shell.run("printf 'X' | dd of=\(data) bs=1 seek=1000 conv=notrunc 2>/dev/null")
                let error = await #expect(throws: RunnerError.self) {
                    _ = try await ImagePuller(store: store, options: RegistryOptions()).pull("\(registry.host)/fn-test/corrupt:1")
                }
                #expect(error?.step == "verify blob", "\(String(describing: error))")
                #expect(!store.content.has(victim))
                #expect(try FileSystem.list(store.dataDirectory + "/content/ingest").isEmpty)
                #expect(try store.list().isEmpty)
            }
        }
    }
}

@Suite struct RegistryAuthParsingTests {
    @Test func bearerAndBasicChallengesAreParsed() {
        let bearer = AuthChallenge.parse(#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#)
        #expect(bearer?.scheme == "bearer")
        #expect(bearer?.parameters["realm"] == "https://auth.example/token")
        #expect(bearer?.parameters["service"] == "registry.example")
        #expect(bearer?.parameters["scope"] == "repository:a/b:pull")
        #expect(AuthChallenge.parse(#"Basic realm="fn-test-realm""#) == AuthChallenge(scheme: "basic", parameters: ["realm": "fn-test-realm"]))
    }

    @Test func credentialsComeFromFnDockerAuthAndDockerConfigAndMatchBySubdomain() throws {
        let dir = "/tmp/fnrunner-test-creds-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectories(dir)
        defer { try? FileSystem.removeTree(dir) }
        // {"auths": {"https://index.docker.io/v1/": {"auth": base64("hubuser:hubpass")}, "example.com": {"auth": base64("ex:pw")}}}
        try FileSystem.create(
            dir + "/config.json",
            contents: #"{"auths":{"https://index.docker.io/v1/":{"auth":"aHVidXNlcjpodWJwYXNz"},"example.com":{"auth":"ZXg6cHc="}}}"#)
        let creds = try RegistryCredentials.load(environment: [
            "DOCKER_CONFIG": dir, "FN_DOCKER_AUTH": #"{"localhost:5000":{"username":"fn","password":"secret"}}"#,
        ])
        #expect(creds.login(for: "docker.io")?.username == "hubuser")
        #expect(creds.login(for: "registry-1.docker.io")?.password == "hubpass")
        #expect(creds.login(for: "registry.example.com")?.username == "ex")
        #expect(creds.login(for: "localhost:5000")?.password == "secret")
        #expect(creds.login(for: "other.org") == nil)
        #expect(throws: RunnerError.self) { try RegistryCredentials.load(environment: ["FN_DOCKER_AUTH": "{not json"]) }
    }
}

/// Against a registry that misbehaves on purpose (Tests/Fixtures/flaky_registry.py): anonymous
/// bearer tokens, blobs redirected to another host, every blob's first download cut in half.
@Suite(.enabled(if: Host.isRoot, "needs root to restore ownership and create overlay whiteouts"))
struct FlakyRegistryTests {
    @Test func aPullGetsATokenFollowsRedirectsWithoutCredentialsAndResumesCutDownloads() async throws {
        try await withSharedGate {
            let fixtures = try await ImageFixtures.directory()
            let dir = "/tmp/fnrunner-test-flaky-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try FileSystem.makeDirectories(dir)
            defer { try? FileSystem.removeTree(dir) }
            let server = try Subprocess(["/usr/bin/env", "python3", Fixtures.packageRoot + "/Tests/Fixtures/flaky_registry.py", fixtures + "/layers", dir + "/port"])
            defer { server.signal(SIGKILL) }  // reaped by its deinit
            var port = ""
            try? await waitUntil(timeoutMillis: helperStartMillis) {
                port = (try? FileSystem.read(dir + "/port")) ?? ""
                return !port.isEmpty
            }
            #expect(!port.isEmpty, "the flaky registry did not start: \(server.stderr)")
            let store = try ImageStore(dataDirectory: dir + "/store")
            let options = RegistryOptions(retryBaseDelayMillis: 10)
            let record = try await ImagePuller(store: store, options: options).pull("127.0.0.1:\(port)/flaky/image:1")
            let flat = dir + "/flat"
            try store.unpackFlattened(record, into: flat)
            #expect(try FileSystem.list(flat + "/d") == ["z"])
            let stats = try await Shell.output("curl -s http://127.0.0.1:\(port)/stats")
            #expect(stats.contains("\"cut\": 2"), "\(stats)")  // the two layers larger than 2 KiB
            #expect(stats.contains("\"ranged\": 2"), "each cut download was resumed with Range: \(stats)")
        }
    }

    @Test func plainHTTPIsAllowedOnlyForLoopbackAndListedRegistries() {
        let options = RegistryOptions(insecureRegistries: ["registry.internal:5000"])
        #expect(options.allowsPlainHTTP("localhost:5000"))
        #expect(options.allowsPlainHTTP("127.0.0.1:5555"))
        #expect(options.allowsPlainHTTP("registry.internal:5000"))
        #expect(!options.allowsPlainHTTP("registry.internal:6000"))
        #expect(!options.allowsPlainHTTP("docker.io"))
        #expect(!options.allowsPlainHTTP("ghcr.io"))
    }
}
