// swift-tools-version:6.0
import Foundation
import PackageDescription

/// The numerics core is compiled with optimisation in every configuration: its SIMD loops are
/// hundreds of times slower unoptimised, which would make debug runs and tests crawl. It targets
/// AVX2 + FMA (x86-64 from 2013 on: Haswell, Zen), where the 8-lane recurrence runs about three
/// times faster than at the SSE2 baseline; `S4_FMA` lets the hot loop use fused multiply-adds,
/// which at the baseline would become a library call per lane. Set S4LISTEN_PORTABLE=1 when
/// building for older processors.
let coreSettings: [SwiftSetting] = {
    var settings: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]
    #if arch(x86_64)
    if ProcessInfo.processInfo.environment["S4LISTEN_PORTABLE"] == nil {
        settings += [.unsafeFlags(["-target-cpu", "haswell"]), .define("S4_FMA")]
    }
    #endif
    return settings
}()

let package = Package(
    name: "s4listen",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "s4listen", targets: ["s4listen"]),
        .library(name: "S4Core", targets: ["S4Core"]),
        .library(name: "S4Audio", targets: ["S4Audio"]),
        .library(name: "S4Detection", targets: ["S4Detection"]),
        .library(name: "S4RandomModel", targets: ["S4RandomModel"]),
        .library(name: "S4Service", targets: ["S4Service"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // System libraries, found through pkg-config (see Makefile `deps` for the apt packages).
        .systemLibrary(name: "CFFTW3", pkgConfig: "fftw3f", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CALSA", pkgConfig: "alsa", providers: [.apt(["libasound2-dev"])]),
        // Avahi's headers are in /usr/include; its pkg-config file adds only -D_REENTRANT, which SwiftPM refuses.
        .systemLibrary(name: "CAvahi", providers: [.apt(["libavahi-client-dev"])]),

        // The diagonal S4 step in 512-bit vectors, used at run time where the processor has AVX-512
        // (C: a Swift module is compiled for one processor). Optimised in every configuration, as the core.
        .target(name: "CS4Step", cSettings: [.unsafeFlags(["-O2"])]),

        // The numerics core: S4 set-up, kernels, recurrence and the network, up to the logits of a
        // window. No files, devices or processes.
        .target(
            name: "S4Core",
            dependencies: [
                "CFFTW3", "COpenBLAS", "CS4Step",
                .product(name: "Numerics", package: "swift-numerics"),
            ],
            swiftSettings: coreSettings
        ),
        // Audio sources: decoded float samples at the source's own rate (a rate the core supports).
        .target(name: "S4Audio", dependencies: ["S4Core", "CSndFile", "CALSA"]),
        // The detection pipeline: samples in, one event per spoken command out; batch classification
        // of clips in windows.
        .target(name: "S4Detection", dependencies: ["S4Core"], swiftSettings: coreSettings),
        // Untrained models and the seeded generator: for tests, `bench --random` and `random-model`.
        .target(
            name: "S4RandomModel",
            dependencies: ["S4Core", .product(name: "Numerics", package: "swift-numerics")]
        ),
        // The detection loop (source → detector → events), the batch engine of `classify`, the daemon
        // under systemd and the Wyoming server (announced by zeroconf through Avahi).
        .target(
            name: "S4Service",
            dependencies: [
                "S4Core", "S4Audio", "S4Detection", "CAvahi",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The command-line tool.
        .executableTarget(
            name: "s4listen",
            dependencies: [
                "S4Core", "S4Audio", "S4Detection", "S4Service", "S4RandomModel",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "S4CoreTests",
            dependencies: [
                "S4Core", "S4RandomModel",
                .product(name: "Numerics", package: "swift-numerics"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "S4AudioTests", dependencies: ["S4Audio", "CSndFile"], resources: [.copy("Fixtures")]),
        .testTarget(name: "S4DetectionTests", dependencies: ["S4Detection", "S4Core", "S4RandomModel"]),
        .testTarget(name: "CLITests", dependencies: ["s4listen", "S4Audio", "S4RandomModel"]),
        .testTarget(name: "S4ServiceTests", dependencies: ["S4Service"]),
    ]
)
