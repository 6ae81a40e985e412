import Logging
import OCIImage
import RunnerOS
import Sandbox
import TestSupport
import Testing

@testable import PythonBytecode

#if canImport(Glibc)
import Glibc
#endif

/// Bytecode layers built by the image's own interpreter in a sandbox: what reaches the layer,
/// what a function then sees, and what a failed, hung or repeated build leaves.
@Suite(.enabled(if: Host.canRunContainers, "needs root and cgroup memory/pids controllers"))
struct BytecodeLayerBuilderTests {
    static var logger: Logger {
        var l = Logger(label: "test.bytecode")
        l.logLevel = .critical
        return l
    }

    /// A store in its own directory beside the sandbox's state, removed afterwards.
    static func withStore<T>(
        _ label: String, limits: BytecodeLayerBuilder.Limits = .init(),
        _ body: (ImageStore, BytecodeLayerBuilder, Sandbox, TestEnvironment) async throws -> T
    ) async throws -> T {
        try await withSandbox(label, poolSize: 0) { sandbox, env in
            let data = env.stateDirectory + "-images"
            defer { try? FileSystem.removeTree(data) }
            let store = try ImageStore(dataDirectory: data, logger: logger)
            let builder = BytecodeLayerBuilder(sandbox: sandbox, store: store, limits: limits, logger: logger)
            return try await body(store, builder, sandbox, env)
        }
    }

    /// Every file below `dir`, relative, found with find(1).
    static func files(_ dir: String) throws -> [String] {
        try Shell.output("cd \(dir) && find . ! -type d | sed 's|^\\./||' | sort").split(separator: "\n").map(String.init)
    }

    @Test func theRealFDKImageGetsItsMissingBytecodeAndItsInterpreterLoadsIt() async throws {
        let layout = try await FDKImage.layout()
        try await Self.withStore("bc-fdk") { store, builder, sandbox, env in
            let record = try store.importLayout(layout, as: "fn-test/pyfdk:pyfdk")
            let imageLayers = try store.imageLayers(record)
            #expect(try store.rootfsLayers(record) == imageLayers, "no layer before the build")

            let outcome = await builder.ensure(record)
            guard case .built(let count, let bytes, _) = outcome else {
                Issue.record("no layer: \(outcome)")
                return
            }
            #expect(count >= 20, "the FDK's and the function's modules: \(count)")
            #expect(bytes > 0)
            let layer = store.bytecode.path(record.config)
            let files = try Self.files(layer)
            #expect(files.count == count)
            #expect(files.allSatisfy { $0.contains("/__pycache__/") && $0.hasSuffix(".pyc") }, "\(files)")
            #expect(files.contains { $0.hasPrefix("python/fdk/__pycache__/__init__.cpython-") }, "\(files)")
            #expect(files.contains { $0.hasPrefix("function/__pycache__/func.cpython-") }, "\(files)")
            #expect(files.allSatisfy { OverlayLookup.entry($0, in: imageLayers) == nil }, "only paths the image lacks")
            #expect(try store.rootfsLayers(record) == [layer] + imageLayers, "the layer is stacked on top")

            // The directories it holds look as they do in the image.
            for dir in ["python", "python/fdk", "function"] {
                let mine = OverlayLookup.entry(dir, in: [layer])
                let theirs = OverlayLookup.entry(dir, in: imageLayers)
                #expect(mine?.mode == theirs?.mode && mine?.uid == theirs?.uid && mine?.gid == theirs?.gid, "\(dir)")
                #expect(mine?.modifiedSeconds == theirs?.modifiedSeconds, "\(dir)")
            }

            // The image's interpreter, in a container of the stacked layers, loads them instead
            // of compiling (-v names the cache file a code object came from).
            let process = try ImageProcess.make(config: try store.config(of: record), layers: try store.rootfsLayers(record))
            var spec = ContainerSpec(layers: try store.rootfsLayers(record), argv: ["python3", "-v", "-c", "import fdk, func"])
            spec.env = process.env
            spec.workingDirectory = process.workingDirectory
            let pipe = try OutputPipe()
            spec.stderr = pipe.writeFD
            let container = try sandbox.start(spec)
            pipe.closeWriteEnd()
            let said = await pipe.readToEnd()
            let exit = await container.wait()
            try await container.close()
            #expect(exit.shellStatus == 0, "\(said.suffix(2000))")
            #expect(said.contains("code object from '/python/fdk/__pycache__/__init__.cpython-"), "\(said.suffix(3000))")
            #expect(said.contains("code object from '/function/__pycache__/func.cpython-"), "\(said.suffix(3000))")

            #expect(await builder.ensure(record) == .present)
            _ = env
        }
    }

    @Test func anImageWithoutPythonIsSkippedWithoutStartingAContainer() async throws {
        let layout = try await ImageFixtures.helloStreamLayout()
        try await Self.withStore("bc-none") { store, builder, sandbox, _ in
            let record = try store.importLayout(layout, as: "fn-test/hello:1")
            let before = sandbox.startCounts
            #expect(builder.needsBuild(record))
            #expect(await builder.ensure(record) == .skipped(BytecodeLayerBuilder.noInterpreter))
            #expect(sandbox.startCounts == before, "no container for an image without an interpreter")
            #expect(store.bytecode.state(record.config) == .skipped(BytecodeLayerBuilder.noInterpreter))
            #expect(!builder.needsBuild(record))
            #expect(try store.rootfsLayers(record) == store.imageLayers(record))
        }
    }

    @Test func onlyCacheFilesOfTheImagesOwnReadableSourcesReachTheLayer() async throws {
        let layout = try await ScriptedPythonImage.layout()
        try await Self.withStore("bc-hostile") { store, builder, _, _ in
            let record = try store.importLayout(layout, as: "fn-test/scripted:hostile")
            let outcome = await builder.ensure(record)
            guard case .built(let count, let bytes, _) = outcome else {
                Issue.record("no layer: \(outcome)")
                return
            }
            #expect(count == 1 && bytes == 5)
            let layer = store.bytecode.path(record.config)
            #expect(try Self.files(layer) == ["app/__pycache__/mod.cpython-311.pyc"])
            #expect(try FileSystem.read(layer + "/app/__pycache__/mod.cpython-311.pyc") == "good\n")
            let imageApp = try #require(OverlayLookup.entry("app", in: try store.imageLayers(record)))
            let app = try #require(OverlayLookup.entry("app", in: [layer]))
            #expect(app.mode & 0o7777 == 0o751 && imageApp.mode & 0o7777 == 0o751)
            #expect(app.modifiedSeconds == 1_600_000_000 && app.uid == imageApp.uid)
            let cache = try #require(OverlayLookup.entry("app/__pycache__", in: [layer]))
            #expect(cache.mode & 0o7777 == 0o755 && cache.uid == 0)
            let pyc = try #require(OverlayLookup.entry("app/__pycache__/mod.cpython-311.pyc", in: [layer]))
            #expect(pyc.mode & 0o7777 == 0o644 && pyc.uid == 0)
        }
    }

    @Test func aFailedCompileLeavesTheImageAsItWasAndIsTriedAgainOnlyWhenAsked() async throws {
        let layout = try await ScriptedPythonImage.layout()
        try await Self.withStore("bc-fail") { store, builder, sandbox, _ in
            let record = try store.importLayout(layout, as: "fn-test/scripted:fail")
            let outcome = await builder.ensure(record)
            guard case .skipped(let reason) = outcome else {
                Issue.record("\(outcome)")
                return
            }
            #expect(reason.contains("python3 ended with") && reason.contains("3"), "\(reason)")
            #expect(try store.rootfsLayers(record) == store.imageLayers(record))
            #expect(try FileSystem.list(store.bytecode.root + "/tmp").isEmpty, "no half-built layer left")
            let starts = sandbox.startCounts
            #expect(await builder.ensure(record) == outcome)
            #expect(sandbox.startCounts == starts, "a recorded failure is not retried at a start")
            _ = await builder.ensure(record, retryingSkipped: true)
            #expect(sandbox.startCounts.direct == starts.direct + 1, "a new pull or import tries again")
        }
    }

    @Test func aCompileThatOutlivesItsDeadlineIsKilledAndLeavesNothing() async throws {
        let layout = try await ScriptedPythonImage.layout()
        var limits = BytecodeLayerBuilder.Limits()
        limits.timeout = .milliseconds(500)
        try await Self.withStore("bc-hang", limits: limits) { store, builder, sandbox, env in
            let record = try store.importLayout(layout, as: "fn-test/scripted:hang")
            let outcome = await builder.ensure(record)
            guard case .skipped(let reason) = outcome else {
                Issue.record("\(outcome)")
                return
            }
            #expect(reason.contains("did not finish"), "\(reason)")
            #expect(sandbox.liveContainers.isEmpty, "the build's container is gone")
            #expect(await env.settledCgroupDirectories(sandbox).count == env.cgroupDirectories().count)
        }
    }

    @Test func aCompileWithNothingToAddGivesNoLayer() async throws {
        let layout = try await ScriptedPythonImage.layout()
        try await Self.withStore("bc-nothing") { store, builder, _, _ in
            let record = try store.importLayout(layout, as: "fn-test/scripted:nothing")
            guard case .skipped(let reason) = await builder.ensure(record) else {
                Issue.record("expected a skip")
                return
            }
            #expect(reason.contains("nothing to compile"))
            #expect(try store.rootfsLayers(record) == store.imageLayers(record))
        }
    }

    @Test func removingTheImageRemovesItsBytecodeLayer() async throws {
        let layout = try await ScriptedPythonImage.layout()
        try await Self.withStore("bc-remove") { store, builder, _, _ in
            let record = try store.importLayout(layout, as: "fn-test/scripted:hostile")
            let other = try store.importLayout(layout, as: "fn-test/scripted:fail")
            _ = await builder.ensure(record)
            _ = await builder.ensure(other)
            let report = try store.remove("fn-test/scripted:hostile")
            #expect(report.bytecodeLayers == [record.config])
            #expect(store.bytecode.state(record.config) == .unknown)
            #expect(!FileSystem.exists(store.bytecode.path(record.config)))
            #expect(store.bytecode.state(other.config) != .unknown, "the other image keeps its record")
        }
    }

    @Test func concurrentBuildsOfOneImageShareOneContainer() async throws {
        let layout = try await ScriptedPythonImage.layout()
        try await Self.withStore("bc-once") { store, builder, sandbox, _ in
            let record = try store.importLayout(layout, as: "fn-test/scripted:hostile")
            let before = sandbox.startCounts.direct
            async let a = builder.ensure(record)
            async let b = builder.ensure(record)
            let (x, y) = await (a, b)
            #expect(x == y)
            #expect(sandbox.startCounts.direct == before + 1)
        }
    }
}

/// The pure parts: which cache file belongs to which source, where the interpreter and the
/// function's modules are.
struct BytecodeNamingTests {
    @Test func aCacheFileBelongsToTheModuleBesideItsCacheDirectory() {
        #expect(CompiledTree.source(ofCacheFile: ["a", "b", "__pycache__", "mod.cpython-311.pyc"]) == "a/b/mod.py")
        #expect(CompiledTree.source(ofCacheFile: ["__pycache__", "mod.cpython-311.opt-1.pyc"]) == "mod.py")
        #expect(CompiledTree.source(ofCacheFile: ["a", "__pycache__", "mod.pyc"]) == nil, "no interpreter tag")
        #expect(CompiledTree.source(ofCacheFile: ["a", "cache", "mod.cpython-311.pyc"]) == nil)
        #expect(CompiledTree.source(ofCacheFile: ["a", "__pycache__", ".cpython-311.pyc"]) == nil)
        #expect(CompiledTree.source(ofCacheFile: ["a", "__pycache__", "mod.cpython-311.py"]) == nil)
    }

    @Test func theFunctionsModulesAreItsWorkingDirectoryAndTheScriptsItNames() {
        #expect(BytecodeLayerBuilder.roots(workingDirectory: "/", argv: ["python3", "/srv/app/main.py"]) == ["/srv/app"])
        #expect(
            BytecodeLayerBuilder.roots(workingDirectory: "/function", argv: ["/python/bin/fdk", "/function/func.py", "handler"])
                == ["/function"])
        #expect(BytecodeLayerBuilder.roots(workingDirectory: "/", argv: ["/bin/hello"]).isEmpty)
    }
}
