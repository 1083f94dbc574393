extension ConfigFile {
    /// `peers`: the other satellites of the site (docs/sync.md, "Peers").
    public struct Peers: Sendable, Equatable {
        /// Registry listeners of other satellites: `http://10.0.0.12:5000`, or
        /// `https://10.0.0.12:5000` where the site's listeners serve TLS (`registry.tls`).
        public var urls: [String] = []
        /// Find peers on the LAN by UDP broadcast announcements.
        public var discover: Bool = false
        /// The site's shared secret (required with peers): peers prove it, it never crosses
        /// the wire.
        public var secretFile: String?
        /// This satellite's registry URL as its peers reach it; default: the listen address
        /// when it names one host, `https://` when `registry.tls` is set.
        public var advertise: String?
        /// PEM bundle (the site's CA) that verifies `https://` peers' certificates; nil: the
        /// registry's own `registry.tls.caFile` when set (``ConfigFile/peerCAFile``), else
        /// the system's CAs. Never a way to skip verification.
        public var caFile: String?
        /// The UDP port of discovery announcements.
        public var discoveryPort: Int = 47823
        /// Where discovery sends its announcements (a broadcast address).
        public var discoveryAddress: String = "255.255.255.255"
        /// How long a satellite waits for a higher-ranked peer to start fetching a blob
        /// before it fetches it itself (nanoseconds).
        public var takeover: Int64 = 2_000_000_000

        public init() {}

        /// Peers are in use: a list or discovery.
        public var enabled: Bool { !urls.isEmpty || discover }
    }

    /// Reads the `peers` object.
    ///
    /// Throws ``ConfigError`` naming the key at fault.
    static func readPeers(_ reader: inout ObjectReader) throws -> Peers {
        var peers = Peers()
        for (index, url) in (try reader.stringArray("urls") ?? []).enumerated() {
            guard let parsed = UpstreamURL(url) else {
                throw ConfigError(path: "peers.urls[\(index)]", message: "\"\(url)\" is not an http:// or https:// URL of a satellite's registry")
            }
            peers.urls.append(parsed.base)
        }
        peers.discover = try reader.bool("discover") ?? false
        peers.secretFile = try reader.string("secretFile")
        if let advertise = try reader.string("advertise") {
            guard let parsed = UpstreamURL(advertise) else {
                throw ConfigError(path: "peers.advertise", message: "\"\(advertise)\" is not an http:// or https:// URL such as \"https://10.0.0.11:5000\"")
            }
            peers.advertise = parsed.base
        }
        if let caFile = try reader.string("caFile") {
            guard !caFile.isEmpty else {
                throw ConfigError(path: "peers.caFile", message: "must not be empty (omit it to use registry.tls.caFile, or the system's CAs)")
            }
            peers.caFile = caFile
        }
        if let port = try reader.integer("discoveryPort", range: 1...65535) { peers.discoveryPort = Int(port) }
        if let address = try reader.string("discoveryAddress") {
            guard address.split(separator: ".").count == 4, address.split(separator: ".").allSatisfy({ UInt8($0) != nil }) else {
                throw ConfigError(path: "peers.discoveryAddress", message: "\"\(address)\" is not an IPv4 address such as \"10.0.0.255\"")
            }
            peers.discoveryAddress = address
        }
        if let takeover = try reader.duration("takeover") {
            guard takeover > 0 else { throw ConfigError(path: "peers.takeover", message: "must be positive") }
            peers.takeover = takeover
        }
        if peers.enabled, peers.secretFile == nil {
            throw ConfigError(path: "peers.secretFile", message: "is required with peers: the site's shared secret")
        }
        return peers
    }

    /// `peers.advertise` against `registry.tls`: a listener with TLS speaks HTTPS only, so
    /// peers told `http://` could never reach it. Without `advertise`, a listener on every
    /// interface (`0.0.0.0`, `::`) names no address peers could reach: every satellite would
    /// name itself alike (the same rank, the same claimant) and announce an address that
    /// leads each peer back to itself.
    ///
    /// Throws ``ConfigError`` naming `peers.advertise`.
    static func checkPeers(_ peers: Peers, registry: Registry) throws {
        if peers.enabled, peers.advertise == nil, ["0.0.0.0", "::", "0:0:0:0:0:0:0:0"].contains(registry.listen.host) {
            let scheme = registry.tls == nil ? "http" : "https"
            throw ConfigError(
                path: "peers.advertise",
                message: "is required when registry.listen is \(registry.listen) (every interface): the URL peers reach this satellite at, such as \"\(scheme)://10.0.0.11:\(registry.listen.port)\"")
        }
        guard registry.tls != nil, let advertise = peers.advertise, advertise.hasPrefix("http://") else { return }
        throw ConfigError(
            path: "peers.advertise",
            message: "\"\(advertise)\" is http:// but registry.tls serves HTTPS only: advertise \"https://\(advertise.dropFirst(7))\"")
    }

    /// The CA bundle that verifies `https://` peers: `peers.caFile`, else the site CA of
    /// `registry.tls.caFile` (the satellites of a site share it), else nil (the system's CAs).
    /// `registry.tls.certFile` is not used: a satellite's own leaf verifies no other peer,
    /// and naming it would replace the system's CAs for peers with public certificates.
    public var peerCAFile: String? { peers.caFile ?? registry.tls?.caFile }
}
