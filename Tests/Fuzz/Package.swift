// swift-tools-version:5.4
// The libFuzzer targets of iw-detect: a separate package, so the main package never builds with
// the fuzzer's flags. Built and run by scripts/fuzz, which builds with
//   swift build -c debug --package-path Tests/Fuzz --scratch-path .build-fuzz \
//     -Xswiftc -sanitize=address -Xswiftc -Xfrontend -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
//     -Xcc -fsanitize=fuzzer-no-link,address -Xcxx -fsanitize=fuzzer-no-link,address
// Each executable only forwards libFuzzer's input to its entry in IWDetectFuzzEntries (the main
// package's Tests/Fuzz/Entries), which the regression test FuzzCorpusTests calls too.
//
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM renames an executable's `main` to
// `<module>_main` (so tests can link executables), but here libFuzzer provides `main`.
import PackageDescription

let targets = ["decoder", "condition", "rulefile", "config", "snapshot"]

let package = Package(
    name: "iw-detect-fuzz",
    dependencies: [.package(name: "iw-detect", path: "../..")],
    targets: targets.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: [.product(name: "IWDetectFuzzEntries", package: "iw-detect")],
            path: "Sources/fuzz-\(name)",
            // libFuzzer (and its `main`) is linked here, into the fuzz executables only: passed
            // with -Xswiftc it would also go into the main package's build tools (embed-rules),
            // which have a `main` of their own and no LLVMFuzzerTestOneInput.
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
        )
    }
)
