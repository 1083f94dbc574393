// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "satellite-lite",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "satellite-lite", targets: ["satellite-lite"]),
        .executable(name: "ground-control", targets: ["ground-control"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // Ground Control only (the cloud half; never linked into satellite-lite).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
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
            cSettings: [.define("_FILE_OFFSET_BITS", to: "64"), .define("_TIME_BITS", to: "64")],
            // crypt_r for htpasswd entries (libxcrypt: bcrypt and SHA-crypt; libcrypt.a statically).
            linkerSettings: [.linkedLibrary("crypt")]
        ),
        // The registry listener's TLS server: mbedTLS's ssl module over memory buffers,
        // driven by TinyRegistry's NIO handler (mbedTLS is linked for libcurl anyway).
        .target(
            name: "CTLSServer",
            dependencies: ["CMbedTLS"],
            cSettings: [.define("_FILE_OFFSET_BITS", to: "64"), .define("_TIME_BITS", to: "64")]
        ),
        // ECDSA P-256 signature checks through mbedTLS's pk API (cosign signatures).
        .target(
            name: "CSignature",
            dependencies: ["CMbedTLS"],
            cSettings: [.define("_FILE_OFFSET_BITS", to: "64"), .define("_TIME_BITS", to: "64")]
        ),
        // Cosign signature verification (simple signing, DSSE / sigstore bundles) and the
        // trust policy at the store's publish step (no NIO).
        .target(
            name: "Trust",
            dependencies: ["CSignature", "ContentStore", "JSONCoding", "OCICore"],
            swiftSettings: swiftSettings
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
        // The NIO-free base every module shares: OCI names, digests, manifests, media types,
        // hashing, POSIX file I/O, the clock, byte and text formatting.
        .target(
            name: "OCICore",
            dependencies: ["CMbedTLS", "CSHA256", "JSONCoding"],
            swiftSettings: swiftSettings
        ),
        // The content-addressed store (NIO-free): its layout, ingest, the one publish step,
        // GC and quota policy, verification.
        .target(
            name: "ContentStore",
            dependencies: [
                "CSatelliteSystem",
                "JSONCoding",
                "OCICore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SatelliteConfig",
            dependencies: ["OCICore", "JSONCoding"],
            swiftSettings: swiftSettings
        ),
        // The OCI Distribution HTTP layer over ContentStore.
        .target(
            name: "TinyRegistry",
            dependencies: [
                "ContentStore",
                "CSatelliteSystem",
                "CTLSServer",
                "JSONCoding",
                "OCICore",
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
                "ContentStore",
                "Trust",
                "JSONCoding",
                "OCICore",
                .product(name: "NIOPosix", package: "swift-nio"),
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
                "ContentStore",
                "OCICore",
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
                "OCICore",
                "SatelliteConfig",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Container-runtime mirror configuration (containerd, Docker, k3s, registries.conf).
        .target(
            name: "RuntimeConfig",
            dependencies: ["JSONCoding", "OCICore", "SatelliteConfig"],
            swiftSettings: swiftSettings
        ),
        // The small command-line parser (no Foundation, no argument-parser: size).
        .target(
            name: "CommandParsing",
            dependencies: [],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "satellite-lite",
            dependencies: [
                "CommandParsing",
                "ContentStore",
                "Hooks",
                "FleetLink",
                "JSONCoding",
                "OCICore",
                "RuntimeConfig",
                "SatelliteConfig",
                "Sync",
                "TinyRegistry",
                "Trust",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Ground Control, the fleet server: API, database (SQLite or PostgreSQL through one
        // sql-kit query path), registry token issuing, state publishing.
        .target(
            name: "GroundControl",
            dependencies: [
                "Fleet",
                "JSONCoding",
                "OCICore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            // The OpenAPI document served at /openapi.json, compiled into the binary; the
            // file is a link to docs/ground-control.openapi.json, the one source.
            resources: [.embedInCode("Resources/openapi.json")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ground-control",
            dependencies: [
                "GroundControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
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
            name: "OCICoreTests",
            dependencies: ["OCICore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ContentStoreTests",
            dependencies: ["ContentStore", "OCICore", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SatelliteConfigTests",
            dependencies: ["SatelliteConfig", "TestSupport", "OCICore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TinyRegistryTests",
            dependencies: [
                "TinyRegistry", "ContentStore", "OCICore", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HooksTests",
            dependencies: ["Hooks", "RuntimeConfig", "JSONCoding", "OCICore", "SatelliteConfig"],
            exclude: ["golden"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FleetTests",
            dependencies: ["Fleet", "JSONCoding", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TrustTests",
            dependencies: ["Trust", "JSONCoding"],
            exclude: ["make-fixtures.sh"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FleetLinkTests",
            dependencies: [
                "FleetLink", "Fleet", "JSONCoding", "SatelliteConfig", "Sync", "ContentStore", "OCICore", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GroundControlTests",
            dependencies: [
                "GroundControl", "Fleet", "JSONCoding",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
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
            dependencies: [
                "Sync", "CTLSVerify", "ContentStore", "OCICore", "TestSupport", "Fleet", "Trust", "JSONCoding", "TinyRegistry",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
