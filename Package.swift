// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "fnrunner",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fnrunner", targets: ["fnrunner"]),
        .executable(name: "fnrunner-serve", targets: ["fnrunner-serve"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // No traits: the API uses neither swift-configuration readers nor the full-Foundation
        // form coders, and with two trait defines SwiftPM orders them differently from one
        // invocation to the next, which rebuilt HummingbirdCore and everything above it.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Already in the graph through hummingbird; named for the one channel handler RunnerAPI adds.
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // HTTP parts as swift-http-types values, for the invoke path's own channel handler.
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        // Fn's RunnerProtocol (module RunnerGRPC); its code is generated once and committed.
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.3.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.38.0", traits: []),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.0"),
        // The pure runner's own server for RunnerProtocol (already in the graph through the above).
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.36.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        // Spans (already in the graph through hummingbird) and their OTLP/HTTP export, for serve only.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // The agent's /metrics series and their exposition format.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.2.0"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // The only code that runs between clone and exec: raw syscalls, no malloc, no locks.
        .target(name: "CRunnerShim", exclude: ["init"]),
        // fnrunner-init, the PID 1 of every container, built without libc and embedded in Sandbox.
        .plugin(name: "InitImage", capability: .buildTool()),
        .systemLibrary(
            name: "CSeccomp",
            pkgConfig: "libseccomp",
            providers: [.apt(["libseccomp-dev"])]
        ),
        .systemLibrary(
            name: "CCap",
            pkgConfig: "libcap",
            providers: [.apt(["libcap-dev"])]
        ),
        // libarchive is loaded on first use (see its forward.c), not linked,
        // so that commands which never touch an image do not pay for loading it.
        .target(name: "CArchive"),
        // Route netlink, namespace entry and nftables (libnftables loaded on first use).
        .target(name: "CNetlink"),
        .target(
            name: "RunnerOS",
            dependencies: ["CRunnerShim", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "CgroupDriver",
            dependencies: ["RunnerOS", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Freezer",
            dependencies: ["CgroupDriver", "RunnerOS"]
        ),
        // The node's bridge for functions: veths, leased addresses, NAT and walls (nftables).
        .target(
            name: "NodeNetwork",
            dependencies: ["CNetlink", "RunnerOS", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Sandbox",
            dependencies: [
                "CRunnerShim", "CSeccomp", "CCap", "RunnerOS", "CgroupDriver", "Freezer", "NodeNetwork",
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["InitImage"]
        ),
        // libcurl's setopt/getinfo are variadic: a few C wrappers make them callable from Swift.
        .target(name: "CCurlShim"),
        .target(
            name: "OCIImage",
            dependencies: [
                "CArchive", "CCurlShim", "RunnerOS", .product(name: "Logging", package: "swift-log"),
                // SHA-256 of every blob; already in the graph through swift-certificates.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Runner-made layers of compiled Python bytecode, built in a sandbox of the image.
        .target(
            name: "PythonBytecode",
            dependencies: ["CRunnerShim", "OCIImage", "Sandbox", "RunnerOS", .product(name: "Logging", package: "swift-log")]
        ),
        // The agent core: calls, slots, resource tokens, eviction, metrics. No Linux and no I/O
        // of its own: containers come from a ContainerDriver.
        .target(
            name: "Runner",
            dependencies: [
                "RunnerOS", .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"), .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The native driver: containers in the sandbox from images in the store, and the
        // function wire (http-stream over a unix socket, http/json and default over pipes).
        .target(
            name: "NativeRuntime",
            dependencies: [
                "Runner", "RunnerOS", "CRunnerShim", "CgroupDriver", "Sandbox", "NodeNetwork", "OCIImage", "PythonBytecode",
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The embedded store: apps, fns, triggers, call records and logs in SQLite (WAL).
        .target(
            name: "RunnerStore",
            dependencies: ["Runner", "RunnerOS", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")]
        ),
        // Fn's v2 API, invoke and HTTP triggers on Hummingbird.
        .target(
            name: "RunnerAPI",
            dependencies: [
                "Runner", "NativeRuntime", "RunnerStore", "RunnerOS", "LoopExecutors", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"), .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // A task executor on one NIO event loop, so an edge's hot calls' tasks run where their
        // connection's I/O happens (both edges use it).
        .target(name: "LoopExecutors", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // The node's long-running services, whatever edges it serves (HTTP, gRPC or both): the
        // agent with its detached-call consumer, the record writer, the call pruner.
        .target(
            name: "NodeServices",
            dependencies: [
                "Runner", "RunnerStore", "RunnerOS", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Fn's load balancer ↔ pure runner protocol (Protos/runner.proto; code from scripts/gen-grpc).
        .target(
            name: "RunnerGRPC",
            dependencies: [
                "Runner", "RunnerOS", "LoopExecutors", .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"), .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The options that fnrunner and fnrunner-serve share.
        .target(
            name: "CLIOptions",
            dependencies: [
                "OCIImage", "RunnerOS", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The server in a binary of its own (see ServeMain), exec'd by `fnrunner serve`.
        .executableTarget(
            name: "fnrunner-serve",
            dependencies: [
                "CLIOptions", "Sandbox", "CgroupDriver", "RunnerOS", "OCIImage", "Runner", "NativeRuntime", "RunnerStore", "RunnerAPI", "RunnerGRPC",
                "NodeNetwork", "NodeServices",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"), .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Hot calls through Engage against a running pure runner (scripts/bench).
        .executableTarget(
            name: "fnrunner-grpc-bench",
            dependencies: [
                "RunnerGRPC", "Runner", "LoopExecutors", .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "fnrunner",
            dependencies: [
                "CLIOptions", "Sandbox", "CgroupDriver", "Freezer", "RunnerOS", "OCIImage", "Runner", "NativeRuntime", "NodeNetwork", "PythonBytecode",
                "LoopExecutors", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TestSupport",
            dependencies: ["Sandbox", "CgroupDriver", "RunnerOS", "NodeNetwork"],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "CgroupDriverTests", dependencies: ["CgroupDriver", "RunnerOS", "TestSupport"]),
        .testTarget(name: "FreezerTests", dependencies: ["Freezer", "CgroupDriver", "TestSupport"]),
        .testTarget(
            name: "SandboxTests",
            dependencies: ["Sandbox", "CgroupDriver", "CRunnerShim", "Freezer", "RunnerOS", "TestSupport"]
        ),
        .testTarget(name: "NodeNetworkTests", dependencies: ["NodeNetwork", "RunnerOS", "TestSupport"]),
        .testTarget(
            name: "FnrunnerCLITests", dependencies: ["TestSupport", "RunnerOS", "CLIOptions", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "RunnerTests",
            dependencies: [
                "Runner", "NativeRuntime", "RunnerOS", "CgroupDriver", "Sandbox", "OCIImage", "TestSupport", "LoopExecutors",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(
            name: "RunnerAPITests",
            dependencies: [
                "Runner", "NativeRuntime", "RunnerStore", "RunnerAPI", "NodeServices", "RunnerOS", "Sandbox", "OCIImage", "TestSupport",
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(
            name: "RunnerGRPCTests",
            dependencies: [
                "RunnerGRPC", "LoopExecutors", "Runner", "RunnerOS", "TestSupport", "Sandbox", "OCIImage", .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"), .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(name: "OCIImageTests", dependencies: ["OCIImage", "RunnerOS", "Sandbox", "TestSupport"]),
        .testTarget(name: "PythonBytecodeTests", dependencies: ["PythonBytecode", "OCIImage", "RunnerOS", "Sandbox", "TestSupport"]),
    ]
)

// Every Swift target: a nonisolated async function runs where its caller runs (Swift 6.2's
// `nonisolated(nonsending)`), instead of switching to the generic executor at each call. On
// an event loop's call path each such switch asked the task for its preferred executor under
// the task's status-record lock: about 1.5% of the loop's time under `wrk -c8` (perf). Code that
// must leave its caller's executor says so (`@concurrent`, or a thread of its own).
let cTargets: Set<String> = ["CRunnerShim", "CArchive", "CNetlink", "CCurlShim", "CSeccomp", "CCap"]
for target in package.targets where target.type != .plugin && target.type != .system && !cTargets.contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
}
