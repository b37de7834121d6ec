// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "openai-proxy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "openai-proxy", targets: ["Supervisor"]),
        .executable(name: "cursor-bench", targets: ["CursorBench"]),
        .executable(name: "request-scanning-fuzz", targets: ["RequestScanningFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // The JSON and multipart scanners of the request and answer path: stdlib only, so the fuzz target
        // builds them alone.
        .target(name: "RequestScanning"),
        .target(name: "EventWaiting"),
        // libFuzzer's entry point over the scanners (`make fuzz`); built plain, it replays its arguments.
        .executableTarget(
            name: "RequestScanningFuzz",
            dependencies: ["RequestScanning"],
            path: "Tests/Fuzz/RequestScanningFuzz",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .target(
            name: "Shared",
            dependencies: [
                "CSystemd", "RequestScanning",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // For `ConnectionPoolError`, which PostgresClient throws as it is when it gives up connecting.
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
            ]
        ),
        .target(
            name: "HTTPServing",
            dependencies: [
                "CSystemd", "EventWaiting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ProxyWorker",
            dependencies: [
                "Shared", "HTTPServing", "RequestScanning",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "KeyProbe",
            dependencies: [
                "Shared",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "AdminServer",
            dependencies: [
                "Shared", "HTTPServing", "KeyProbe",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The web console's files: compiled into the binary by the EmbedConsole plugin.
            exclude: ["Console"],
            plugins: ["EmbedConsole"]
        ),
        .executableTarget(
            name: "ConsoleEmbedder",
            path: "Plugins/ConsoleEmbedder"
        ),
        .plugin(
            name: "EmbedConsole",
            capability: .buildTool(),
            dependencies: ["ConsoleEmbedder"]
        ),
        .target(
            name: "StatsCollector",
            dependencies: [
                "Shared", "HTTPServing",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ProcessSupervisor",
            dependencies: [
                "Shared", "CSystemd", "EventWaiting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "Supervisor",
            dependencies: [
                "Shared", "ProxyWorker", "AdminServer", "StatsCollector", "ProcessSupervisor", "KeyProbe",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "CursorBench",
            dependencies: ["Shared"],
            path: "Sources/CursorBench"
        ),
        .testTarget(
            name: "OpenAIProxyTests",
            dependencies: [
                "Shared", "ProxyWorker", "AdminServer", "StatsCollector", "ProcessSupervisor", "HTTPServing",
                "KeyProbe", "RequestScanning", "EventWaiting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
