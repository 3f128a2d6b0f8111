// swift-tools-version:6.1
import PackageDescription

// Every target is compiled in Swift 6 language mode with the same upcoming features.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "iw-detect",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "iw-detect", targets: ["iw-detect"]),
        // The fuzz entries, for the separate fuzz package (Tests/Fuzz/Package.swift).
        .library(name: "IWDetectFuzzEntries", targets: ["IWDetectFuzzEntries"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // `serve` only (the IngestHTTP target): HTTP, gzip bodies, lifecycle, the /metrics format.
        // Hummingbird's default traits (swift-configuration, full Foundation) are not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The dashboard's and the report's HTML pages.
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // simdjson (Debian's libsimdjson-dev) behind a plain C header: full validation, field extraction.
        .target(
            name: "CSimdjson",
            cxxSettings: [.define("SIMDJSON_THREADS_ENABLED", to: "1"), .unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("simdjson"), .linkedLibrary("m")]
        ),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        // HMAC-SHA256 from Debian's OpenSSL (libssl-dev): webhook signing.
        .systemLibrary(name: "CCrypto", path: "Sources/CCrypto"),
        .target(name: "IWDetectCore", dependencies: ["CSQLite"], swiftSettings: swiftSettings),
        .target(name: "Ingest", dependencies: ["IWDetectCore", "CSimdjson"], swiftSettings: swiftSettings),
        .target(name: "Baseline", dependencies: ["IWDetectCore"], swiftSettings: swiftSettings),
        // Reading YAML with positions: every problem of a rule or config file as a Diagnostic.
        .target(name: "YAMLSupport", dependencies: ["IWDetectCore", "Yams"], swiftSettings: swiftSettings),
        .target(name: "Rules", dependencies: ["IWDetectCore", "YAMLSupport", "Yams"], swiftSettings: swiftSettings, plugins: ["EmbedRules"]),
        // Compiles rules/ into the Rules module (BundledRuleFiles), so the binary carries its rules.
        .plugin(name: "EmbedRules", capability: .buildTool(), dependencies: ["embed-rules"]),
        .executableTarget(name: "embed-rules", swiftSettings: swiftSettings),
        .target(name: "Alerts", dependencies: ["IWDetectCore", "YAMLSupport", "Yams", "CCrypto", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        // `exports:`: the inference stream forwarded to a SIEM (filter, projection, spool, workers).
        .target(name: "Exports", dependencies: ["IWDetectCore", "Rules", "Alerts", "YAMLSupport", "Yams", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .target(
            name: "Pipeline",
            dependencies: ["IWDetectCore", "Ingest", "Baseline", "Rules", "Alerts", "Exports", "YAMLSupport", "Yams", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The operator's view: the monitoring guide's panels read from the rollups, as JSON, terminal
        // tables and HTML with inline SVG (`report`, and the dashboard `serve` shows); the forensic
        // queries (`session`, `user`).
        .target(
            name: "Dashboard",
            dependencies: ["Pipeline", "IWDetectCore", "Ingest", "Baseline", "Alerts", .product(name: "Mustache", package: "swift-mustache")],
            swiftSettings: swiftSettings
        ),
        // `iw-detect serve`: the HTTP input (Hummingbird), its endpoints and the daemon's lifecycle.
        // Kept apart so that nothing else builds or links SwiftNIO.
        .target(
            name: "IngestHTTP",
            dependencies: [
                "Pipeline", "IWDetectCore", "Ingest", "Alerts", "Rules", "Exports", "Dashboard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "iw-detect",
            dependencies: [
                "Pipeline", "IngestHTTP", "Dashboard", "IWDetectCore", "Ingest", "Baseline", "Rules", "Alerts", "Exports",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Per-stage benchmarks (decode, baseline update, recompute, rule evaluation); run by scripts/bench.
        .executableTarget(
            name: "iw-detect-bench",
            dependencies: ["Pipeline", "IWDetectCore", "Ingest", "Baseline", "Rules"],
            swiftSettings: swiftSettings
        ),
        .target(name: "IWDetectTestSupport", dependencies: ["IWDetectCore"], path: "Tests/IWDetectTestSupport",
                swiftSettings: swiftSettings),
        .testTarget(name: "IWDetectCoreTests", dependencies: ["IWDetectCore", "IWDetectTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "IWDetectTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BaselineTests", dependencies: ["Baseline", "IWDetectCore", "IWDetectTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "RulesTests", dependencies: ["Rules", "IWDetectTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "AlertsTests", dependencies: ["Alerts", "IWDetectCore", "YAMLSupport", "Yams", "IWDetectTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "PipelineTests",
            dependencies: ["Pipeline", "Dashboard", "IWDetectCore", "Ingest", "Baseline", "Rules", "Alerts", "Exports", "IWDetectTestSupport"],
            swiftSettings: swiftSettings
        ),
        // `serve` through the binary: HTTP input, endpoints, lifecycle, kill -9, real InferenceWall and Prometheus.
        .testTarget(name: "ServeTests", dependencies: ["IWDetectCore", "IWDetectTestSupport"], swiftSettings: swiftSettings),
        // One function per fuzz target (FuzzTarget), called by the libFuzzer executables of
        // Tests/Fuzz/Package.swift (scripts/fuzz) and by FuzzRegressionTests on the committed corpus.
        .target(
            name: "IWDetectFuzzEntries",
            dependencies: ["Pipeline", "IWDetectCore", "Ingest", "Baseline", "Rules", "Alerts", "Exports", "Yams"],
            path: "Tests/Fuzz/Entries",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FuzzRegressionTests",
            dependencies: ["IWDetectFuzzEntries", "IWDetectTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
