import OCICore
/// The tunables of one class of board: every buffer, thread count, limit and default that the
/// code uses comes from here (or from an explicit config key that overrides it).
///
/// Profiles live as JSON in `hw-profiles/` and are compiled into the binary
/// (``EmbeddedProfiles``), so a gateway needs no file beside the executable.
public struct HardwareProfile: Sendable, Equatable {
    public var name: String
    public var description: String
    public var detect: Detect
    public var platform: Platform
    public var io: IO
    public var registry: Registry
    public var storage: Storage
    public var sync: Sync
    public var gc: GC
    public var hooks: Hooks
    /// Optional in a profile file: the defaults suit every board.
    public var proxy = Proxy()

    /// What `"profile": "auto"` looks for on the running machine.
    public struct Detect: Sendable, Equatable {
        /// `uname -m` values this profile fits ("aarch64", "armv7l", "x86_64").
        public var machines: [String]
        /// Substrings of /proc/device-tree/model (or /sys/firmware/devicetree/base/model).
        public var models: [String]
        /// Lower bound of MemTotal for this profile, in bytes (0 = any).
        public var minMemory: Int64
        /// Upper bound of MemTotal, in bytes (0 = any).
        public var maxMemory: Int64
    }

    /// The platform picked from a multi-arch index ("all" in the profile keeps every one).
    public struct Platform: Sendable, Equatable, CustomStringConvertible {
        /// Keep every platform of an index.
        public var all: Bool = false
        public var os: String
        public var architecture: String
        public var variant: String?

        public init(os: String, architecture: String, variant: String? = nil) {
            self.os = os
            self.architecture = architecture
            self.variant = variant
        }

        public var description: String {
            all ? "all" : [os, architecture, variant].compactMap { $0 }.joined(separator: "/")
        }
    }

    /// Streaming buffers: every byte path (upload, download, serve) goes through at most
    /// `bufferCount` buffers of `bufferSize` bytes per transfer.
    public struct IO: Sendable, Equatable {
        public var bufferSize: Int
        public var bufferCount: Int
    }

    public struct Registry: Sendable, Equatable {
        /// SwiftNIO event-loop threads of the registry listener.
        public var eventLoopThreads: Int
        /// Threads for blocking file I/O and hashing.
        public var blockingThreads: Int
        /// Connections served at once; more wait in the accept backlog.
        public var maxConnections: Int
        /// An upload session untouched for this long is purged (nanoseconds).
        public var uploadTimeout: Int64
    }

    public struct Storage: Sendable, Equatable {
        /// fsync blobs, tags and their directories before they become visible. Turning it off
        /// only makes sense on a RAM disk: power loss could then lose committed content.
        public var fsyncOnCommit: Bool
        /// Bytes written to a download between two fsyncs; bounds what a power cut loses.
        public var fsyncInterval: Int64
        /// Default quota when the config sets none.
        public var quota: StorageAmount
    }

    public struct Sync: Sendable, Equatable {
        public var concurrency: Int
        /// Default bandwidth cap in bytes per second (0 = unlimited).
        public var bandwidth: Int64
        /// Abort a transfer that moved no byte for this long (nanoseconds).
        public var stallTimeout: Int64
        public var connectTimeout: Int64
    }

    public struct GC: Sendable, Equatable {
        /// Disk use (share of the quota) that starts a collection.
        public var highWatermark: Double
        /// Disk use a collection brings the store down to.
        public var lowWatermark: Double
        /// An unreferenced blob untouched for less than this is kept (nanoseconds).
        public var gracePeriod: Int64
    }

    /// The pull-through proxy's behaviour.
    public struct Proxy: Sendable, Equatable {
        /// A proxied transfer nobody waits for any more keeps going (the next pull is then
        /// local) rather than stopping to spare the WAN.
        public var continueUnwatched: Bool = true
    }

    public struct Hooks: Sendable, Equatable {
        /// Default timeout of a hook (nanoseconds).
        public var timeout: Int64
    }
}

/// A quota: a byte count, or a share of the filesystem that holds the store.
public enum StorageAmount: Sendable, Equatable, CustomStringConvertible {
    case bytes(Int64)
    case share(Double)

    public var description: String {
        switch self {
        case .bytes(let n): Units.formatSize(n)
        case .share(let s): "\(Units.formatDecimal(s * 100))% of the filesystem"
        }
    }
}

extension HardwareProfile {
    /// Parses a profile document; every key is required and unknown keys are rejected.
    public init(json: JSONValue, source: String) throws {
        var root = try ObjectReader(json, path: "")
        func require<T>(_ value: T?, _ reader: ObjectReader, _ key: String) throws -> T {
            guard let value else {
                throw ConfigError(path: reader.keyPath(key), message: "missing in profile \(source)")
            }
            return value
        }
        name = try require(root.string("name"), root, "name")
        description = try require(root.string("description"), root, "description")

        var detectReader = try require(root.object("detect"), root, "detect")
        detect = Detect(
            machines: try detectReader.stringArray("machines") ?? [],
            models: try detectReader.stringArray("models") ?? [],
            minMemory: try detectReader.size("minMemory") ?? 0,
            maxMemory: try detectReader.size("maxMemory") ?? 0)
        try detectReader.finish()

        if case .string("all") = root.value("platform") {
            platform = Platform(os: "", architecture: "")
            platform.all = true
        } else {
            var platformReader = try require(root.object("platform"), root, "platform")
            platform = Platform(
                os: try require(platformReader.string("os"), platformReader, "os"),
                architecture: try require(platformReader.string("architecture"), platformReader, "architecture"),
                variant: try platformReader.string("variant"))
            try platformReader.finish()
        }

        var ioReader = try require(root.object("io"), root, "io")
        let bufferSize = try require(ioReader.size("bufferSize"), ioReader, "bufferSize")
        guard bufferSize >= 4096, bufferSize <= 16 << 20 else {
            throw ConfigError(path: ioReader.keyPath("bufferSize"), message: "must be between 4KiB and 16MiB")
        }
        io = IO(
            bufferSize: Int(bufferSize),
            bufferCount: Int(try require(ioReader.integer("bufferCount", range: 1...64), ioReader, "bufferCount")))
        try ioReader.finish()

        var registryReader = try require(root.object("registry"), root, "registry")
        registry = Registry(
            eventLoopThreads: Int(
                try require(registryReader.integer("eventLoopThreads", range: 1...64), registryReader, "eventLoopThreads")),
            blockingThreads: Int(
                try require(registryReader.integer("blockingThreads", range: 1...64), registryReader, "blockingThreads")),
            maxConnections: Int(
                try require(registryReader.integer("maxConnections", range: 1...65536), registryReader, "maxConnections")),
            uploadTimeout: try require(registryReader.duration("uploadTimeout"), registryReader, "uploadTimeout"))
        try registryReader.finish()

        var storageReader = try require(root.object("storage"), root, "storage")
        storage = Storage(
            fsyncOnCommit: try require(storageReader.bool("fsyncOnCommit"), storageReader, "fsyncOnCommit"),
            fsyncInterval: try require(storageReader.size("fsyncInterval"), storageReader, "fsyncInterval"),
            quota: try require(storageReader.sizeOrShare("quota"), storageReader, "quota"))
        try storageReader.finish()

        var syncReader = try require(root.object("sync"), root, "sync")
        sync = Sync(
            concurrency: Int(try require(syncReader.integer("concurrency", range: 1...32), syncReader, "concurrency")),
            bandwidth: try require(syncReader.rate("bandwidth"), syncReader, "bandwidth"),
            stallTimeout: try require(syncReader.duration("stallTimeout"), syncReader, "stallTimeout"),
            connectTimeout: try require(syncReader.duration("connectTimeout"), syncReader, "connectTimeout"))
        try syncReader.finish()

        var gcReader = try require(root.object("gc"), root, "gc")
        func watermark(_ key: String) throws -> Double {
            guard let text = try gcReader.string(key) else {
                throw ConfigError(path: gcReader.keyPath(key), message: "missing in profile \(source)")
            }
            guard let share = Units.parsePercent(text) else {
                throw ConfigError(path: gcReader.keyPath(key), message: "\"\(text)\" is not a share such as \"90%\"")
            }
            return share
        }
        gc = GC(
            highWatermark: try watermark("highWatermark"), lowWatermark: try watermark("lowWatermark"),
            gracePeriod: try require(gcReader.duration("gracePeriod"), gcReader, "gracePeriod"))
        guard gc.lowWatermark <= gc.highWatermark else {
            throw ConfigError(path: "gc.lowWatermark", message: "must not exceed gc.highWatermark")
        }
        try gcReader.finish()

        var hooksReader = try require(root.object("hooks"), root, "hooks")
        hooks = Hooks(timeout: try require(hooksReader.duration("timeout"), hooksReader, "timeout"))
        try hooksReader.finish()

        if var proxyReader = try root.object("proxy") {
            proxy.continueUnwatched = try proxyReader.bool("continueUnwatched") ?? true
            try proxyReader.finish()
        }

        try root.finish()
    }

    /// Parses profile JSON text.
    public init(text: String, source: String) throws {
        try self.init(json: JSONValue.parse(Array(text.utf8), source: source), source: source)
    }

    /// Every profile compiled into this binary, sorted by name.
    public static let builtIn: [HardwareProfile] = {
        EmbeddedProfiles.documents.compactMap { name, text in
            // The embedded documents are checked by the test suite; a broken one is skipped
            // rather than taking the process down.
            try? HardwareProfile(text: text, source: "hw-profiles/\(name).json")
        }.sorted { $0.name < $1.name }
    }()

    public static func named(_ name: String) -> HardwareProfile? {
        builtIn.first { $0.name == name }
    }
}
