// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "satellite-lite",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "satellite-lite", targets: ["satellite-lite"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // System libraries. Each folder holds a module map and a header of typed, prefixed shims.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Debian 12's libmbedtls-dev ships no pkg-config file: the module map links mbedcrypto.
        .systemLibrary(
            name: "CMbedTLS",
            providers: [.apt(["libmbedtls-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // SHA-256 on the CPU's SHA instructions; mbedTLS where the CPU has none.
        .target(
            name: "CSHA256",
            dependencies: [],
            cSettings: [.define("_FILE_OFFSET_BITS", to: "64"), .define("_TIME_BITS", to: "64"), .unsafeFlags(["-O3"])]
        ),
        // iPAddress subjectAltName checking for curl's mbedTLS 2.x backend (the static build).
        .target(
            name: "CTLSVerify",
            dependencies: ["CCurl", "CMbedTLS"],
            cSettings: [.define("_FILE_OFFSET_BITS", to: "64"), .define("_TIME_BITS", to: "64")]
        ),
        // libc calls Swift's Glibc module hides (declared only under _GNU_SOURCE).
        .target(
            name: "CSatelliteSystem",
            dependencies: [],
            cSettings: [.define("_FILE_OFFSET_BITS", to: "64"), .define("_TIME_BITS", to: "64")]
        ),
        // JSON parsing, writing and Codable without Foundation (about 7 MB less in the
        // static binary than FoundationEssentials' coders).
        .target(
            name: "JSONCoding",
            dependencies: [],
            swiftSettings: swiftSettings
        ),
        // Harbor Satellite's wire types, shared by the satellite and Ground Control: ZTR,
        // heartbeat, the state artifact documents. No NIO, no Foundation.
        .target(
            name: "Fleet",
            dependencies: ["JSONCoding"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SatelliteConfig",
            dependencies: ["TinyRegistry", "JSONCoding"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TinyRegistry",
            dependencies: [
                "CMbedTLS",
                "CSHA256",
                "CSatelliteSystem",
                "JSONCoding",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Sync",
            dependencies: [
                "CCurl",
                "Fleet",
                "CTLSVerify",
                "CZlib",
                "JSONCoding",
                "TinyRegistry",
                "SatelliteConfig",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The satellite's link to Ground Control: onboarding (ZTR), heartbeats, remote
        // configuration, credential refresh. Over Sync's libcurl layer; no Foundation.
        .target(
            name: "FleetLink",
            dependencies: [
                "Fleet",
                "JSONCoding",
                "SatelliteConfig",
                "Sync",
                "TinyRegistry",
                "CSatelliteSystem",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Hooks",
            dependencies: [
                "CSatelliteSystem",
                "JSONCoding",
                "SatelliteConfig",
                "TinyRegistry",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "satellite-lite",
            dependencies: [
                "TinyRegistry",
                "Sync",
                "Hooks",
                "FleetLink",
                "JSONCoding",
                "SatelliteConfig",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TestSupport",
            dependencies: [],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SatelliteConfigTests",
            dependencies: ["SatelliteConfig", "TestSupport", "TinyRegistry"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TinyRegistryTests",
            dependencies: [
                "TinyRegistry", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HooksTests",
            dependencies: ["Hooks", "JSONCoding", "SatelliteConfig"],
            exclude: ["golden"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FleetTests",
            dependencies: ["Fleet", "JSONCoding", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FleetLinkTests",
            dependencies: [
                "FleetLink", "Fleet", "JSONCoding", "SatelliteConfig", "Sync", "TinyRegistry", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "JSONCodingTests",
            dependencies: ["JSONCoding"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SyncTests",
            dependencies: ["Sync", "CTLSVerify", "TinyRegistry", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
