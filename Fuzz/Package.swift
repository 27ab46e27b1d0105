// swift-tools-version:6.0
// libFuzzer targets for s4listen's parsers and detector (`make fuzz`). Built apart from the main
// package because each target's `main` comes from libFuzzer (-sanitize=fuzzer -parse-as-library),
// which an ordinary `swift build` of the main package could not link.
import PackageDescription

let package = Package(
    name: "s4listen-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "s4listen", path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        .target(name: "FuzzDriver"),
        // The pipe decoder: WAV header parser (auto-detected) or raw s16le, down-mix, clamping.
        .executableTarget(name: "FuzzPipeSource", dependencies: ["FuzzDriver", .product(name: "S4Audio", package: "s4listen")]),
        // The safetensors reader and model validation (metadata, shapes, stability, probe run).
        .executableTarget(name: "FuzzModelFile", dependencies: ["FuzzDriver", .product(name: "S4Core", package: "s4listen")]),
        // The detector fed arbitrary float frames (NaN, infinities, huge values included).
        .executableTarget(name: "FuzzDetector", dependencies: [
            "FuzzDriver", .product(name: "S4Core", package: "s4listen"), .product(name: "S4Detection", package: "s4listen"),
            .product(name: "S4RandomModel", package: "s4listen"),
        ]),
        // A whole Wyoming session: bytes through the server's connection (event decoder, stream
        // state, formats, timestamps) and a detector that fires on any command.
        .executableTarget(name: "FuzzWyomingSession", dependencies: [
            "FuzzDriver", .product(name: "S4Core", package: "s4listen"), .product(name: "S4Detection", package: "s4listen"),
            .product(name: "S4RandomModel", package: "s4listen"), .product(name: "S4Service", package: "s4listen"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
