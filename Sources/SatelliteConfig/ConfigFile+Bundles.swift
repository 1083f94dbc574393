extension ConfigFile {
    /// `bundles`: air-gap bundles carried in by hand (docs/air-gap.md).
    public struct Bundles: Sendable, Equatable {
        /// A folder (a USB mount) whose new bundle files `run` imports.
        public var watch: String?
        /// PEM ECDSA P-256 public keys a bundle's signature must verify with.
        public var keys: [String] = []
        /// Accept bundles without a signature (only with no key to check one against).
        public var unsigned: Bool = false
        /// How long a file in the watch folder must keep its size before it counts as
        /// complete (nanoseconds); a `<file>.done` marker skips the wait.
        public var settle: Int64 = 5 * 1_000_000_000

        public init() {}

        /// Reads the `bundles` object.
        ///
        /// Throws ``ConfigError`` naming the key at fault.
        init(reader: inout ObjectReader) throws {
            if let watch = try reader.string("watch") {
                guard !watch.isEmpty else { throw ConfigError(path: "bundles.watch", message: "must not be empty") }
                self.watch = watch
            }
            if let keys = try reader.stringArray("keys") {
                guard !keys.contains(where: \.isEmpty) else {
                    throw ConfigError(path: "bundles.keys", message: "list PEM public key files, e.g. [\"/etc/satellite-lite/bundle.pub\"]")
                }
                self.keys = keys
            }
            unsigned = try reader.bool("unsigned") ?? false
            if let settle = try reader.duration("settle") {
                guard settle >= 0 else { throw ConfigError(path: "bundles.settle", message: "must not be negative") }
                self.settle = settle
            }
            try reader.finish()
        }
    }
}

extension ConfigFile {
    /// Parses the `bundles` key of `root` (called from ``init(json:)``).
    mutating func readBundles(_ root: inout ObjectReader) throws {
        if var reader = try root.object("bundles") {
            bundles = try Bundles(reader: &reader)
        }
    }
}
