import OCICore

/// The satellite-lite config file (JSON), exactly as ../shared/DESIGN.md specifies it.
///
/// Optional values are the ones the user may leave out; the hardware profile supplies the
/// rest (see ``Settings``).
public struct ConfigFile: Sendable, Equatable {
    /// A profile name from hw-profiles/, a path to a profile file, or "auto".
    public var profile: String = "auto"
    public var storage = Storage()
    public var registry = Registry()
    public var upstream: Upstream?
    public var groundControl: GroundControl?
    public var state = State()
    public var sync = Sync()
    public var hooks: [Hook] = []
    public var trust = Trust()
    public var proxy = Proxy()
    public var peers = Peers()
    /// Air-gap bundles (ConfigFile+Bundles.swift).
    public var bundles = Bundles()

    public struct Storage: Sendable, Equatable {
        public var path: String = "./satellite-data"
        public var quota: StorageAmount?
        /// Tags pushed to the local registry by users are kept by garbage collection
        /// (default). When false, only the desired state is kept and pushed images are cache.
        public var keepPushedTags: Bool = true
    }

    public struct Registry: Sendable, Equatable {
        public var listen = ListenAddress(host: "127.0.0.1", port: 5000)
        public var maxConnections: Int?
        /// Who may push and delete (`registry.push`); pulls stay open.
        public var push: Push = .loopback
        /// The values of `registry.push` (TinyRegistry's ``PushAuthorizer`` enforces them).
        public enum Push: String, Sendable, Equatable, CaseIterable {
            case loopback, authenticated, anyone, nobody
        }
        /// The htpasswd file of `authenticated` (`registry.users`).
        public var users: String?
        /// `registry.idleTimeout` (nanoseconds; 0 = off): a connection with no request in
        /// progress and no request bytes arriving for this long is closed. SIGHUP applies a
        /// new value to new connections.
        public var idleTimeout: Int64 = 60_000_000_000
        /// `registry.headerTimeout` (nanoseconds; 0 = off): the time from a request's first
        /// byte to the end of its headers.
        public var headerTimeout: Int64 = 10_000_000_000
        /// HTTPS on the listener (`registry.tls`); SIGHUP re-reads both files.
        public var tls: TLS?
        public struct TLS: Sendable, Equatable {
            /// PEM certificate, leaf first, then any intermediates.
            public var certFile: String
            /// PEM private key (unencrypted) of the leaf certificate.
            public var keyFile: String
            /// The CA clients verify the certificate with (`runtime-config` installs it);
            /// nil: `certFile` itself (a self-signed certificate is its own CA).
            public var caFile: String?
            /// How long a client has to complete the TLS handshake (nanoseconds).
            public var handshakeTimeout: Int64 = 10_000_000_000
            public init(certFile: String, keyFile: String, caFile: String? = nil, handshakeTimeout: Int64 = 10_000_000_000) {
                self.certFile = certFile
                self.keyFile = keyFile
                self.caFile = caFile
                self.handshakeTimeout = handshakeTimeout
            }
            /// The file that verifies the listener's certificate: `caFile`, else `certFile`.
            public var clientCAFile: String { caFile ?? certFile }
        }
    }

    /// `trust.policies`: cosign signatures a tag needs before it moves.
    public struct Trust: Sendable, Equatable {
        public struct Policy: Sendable, Equatable {
            /// Glob over repository paths: `*` within a segment, `**` across segments.
            public var match: String
            /// Paths of PEM ECDSA P-256 public keys (cosign.pub).
            public var keys: [String]
            /// "require" (refuse, keep the previous tag) or "warn" (publish, log and count).
            public var action: String = "require"
        }
        public var policies: [Policy] = []
    }

    public struct Upstream: Sendable, Equatable {
        public var url: String
        public var username: String?
        public var passwordFile: String?
        /// Name of an environment variable holding the password (instead of a file).
        public var passwordEnv: String?
        public var caFile: String?
        public var insecure: Bool = false
        /// Set by the fleet link from its stored credentials; never read from the file.
        public var password: String?

        public init(url: String) {
            self.url = url
        }
    }

    /// The fleet link (see ConfigFile+GroundControl.swift).
    public struct GroundControl: Sendable, Equatable {
        public var url: String
        public var tokenFile: String?
        /// The join token inline (tokenFile is preferred: config files get copied around).
        public var token: String?
        /// Nanoseconds between heartbeats.
        public var heartbeat: Int64 = 30 * 1_000_000_000
        public var remoteConfig: Bool = true
        public var remoteHooks: Bool = false
        public var caFile: String?
        public var insecure: Bool = false

        public init(url: String) {
            self.url = url
        }
    }

    public struct State: Sendable, Equatable {
        public var images: [ImageReference] = []
        /// A Harbor Satellite state artifact, `satellite/satellite-state/NAME/state:latest`.
        public var artifact: String?
        /// A JSON file listing images in the same form as `images`.
        public var file: String?
        /// Nanoseconds between sync passes in `run`.
        public var interval: Int64 = 5 * 60 * 1_000_000_000
    }

    public struct Sync: Sendable, Equatable {
        /// Bytes per second over all transfers; nil takes the profile's default, 0 is unlimited.
        public var bandwidth: Int64?
        public var concurrency: Int?
        /// How long one pass keeps retrying before it gives up (nanoseconds).
        public var timeout: Int64 = 30 * 60 * 1_000_000_000
        /// Overrides the profile's platform: "os/arch[/variant]", or "all" to keep every
        /// platform of an index.
        public var platform: String?
        /// `sync.windows`: when the WAN may be used (empty: always). ConfigFile+WAN.swift.
        public var windows: [Window] = []
        /// `sync.budget`: bytes the WAN may carry per day and month.
        public var budget = Budget()
    }

    public struct Hook: Sendable, Equatable {
        public var on: Event
        /// A glob on the repository or `repository:tag`; nil matches everything.
        public var match: String?
        public var run: String
        /// nil takes the profile's hook timeout.
        public var timeout: Int64?
    }

    public enum Event: String, Sendable, CaseIterable {
        case imageUpdated = "image-updated"
        case imageRemoved = "image-removed"
        case syncCompleted = "sync-completed"
        case syncFailed = "sync-failed"
        case gcCompleted = "gc-completed"
        case trustRejected = "trust-rejected"
        case bundleImported = "bundle-imported"
    }

    public init() {}
}

/// `host:port` of the registry listener.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses "0.0.0.0:5000", "[::1]:5000" or ":5000" (all interfaces).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard !host.contains(where: { $0.isWhitespace || $0 == "/" }) else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension ConfigFile {
    /// Parses and validates a config document. Unknown keys are errors naming their path.
    public init(json: JSONValue) throws {
        self.init()
        var root = try ObjectReader(json, path: "")
        if let profile = try root.string("profile") {
            guard !profile.isEmpty else { throw ConfigError(path: "profile", message: "must not be empty") }
            self.profile = profile
        }
        if var reader = try root.object("storage") {
            if let path = try reader.string("path") {
                guard !path.isEmpty else { throw ConfigError(path: "storage.path", message: "must not be empty") }
                storage.path = path
            }
            storage.quota = try reader.sizeOrShare("quota")
            storage.keepPushedTags = try reader.bool("keepPushedTags") ?? true
            try reader.finish()
        }
        if var reader = try root.object("registry") {
            if let text = try reader.string("listen") {
                guard let address = ListenAddress(text) else {
                    throw ConfigError(
                        path: "registry.listen",
                        message: "\"\(text)\" is not host:port; write e.g. \"127.0.0.1:5000\" or \"0.0.0.0:5000\"")
                }
                registry.listen = address
            }
            registry.maxConnections = try reader.integer("maxConnections", range: 1...65536).map { Int($0) }
            if let text = try reader.string("push") {
                guard let mode = Registry.Push(rawValue: text) else {
                    throw ConfigError(
                        path: "registry.push",
                        message: "\"\(text)\" is not one of \(Registry.Push.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                registry.push = mode
            }
            if let users = try reader.string("users") {
                guard !users.isEmpty else { throw ConfigError(path: "registry.users", message: "must not be empty") }
                registry.users = users
            }
            if let timeout = try reader.duration("idleTimeout") {
                guard timeout == 0 || (timeout >= 1_000_000_000 && timeout <= 86_400_000_000_000) else {
                    throw ConfigError(path: "registry.idleTimeout", message: "must be 0 (off) or between 1s and 24h")
                }
                registry.idleTimeout = timeout
            }
            if let timeout = try reader.duration("headerTimeout") {
                guard timeout == 0 || (timeout >= 1_000_000_000 && timeout <= 300_000_000_000) else {
                    throw ConfigError(path: "registry.headerTimeout", message: "must be 0 (off) or between 1s and 5m")
                }
                registry.headerTimeout = timeout
            }
            if var tls = try reader.object("tls") {
                let certFile = try tls.string("certFile") ?? ""
                let keyFile = try tls.string("keyFile") ?? ""
                guard !certFile.isEmpty else {
                    throw ConfigError(path: "registry.tls.certFile", message: "is required with registry.tls: the PEM certificate (chain) to serve")
                }
                guard !keyFile.isEmpty else {
                    throw ConfigError(path: "registry.tls.keyFile", message: "is required with registry.tls: the PEM private key of the certificate")
                }
                var files = Registry.TLS(certFile: certFile, keyFile: keyFile)
                if let caFile = try tls.string("caFile") {
                    guard !caFile.isEmpty else { throw ConfigError(path: "registry.tls.caFile", message: "must not be empty (omit it for a self-signed certificate)") }
                    files.caFile = caFile
                }
                if let timeout = try tls.duration("handshakeTimeout") {
                    guard timeout >= 1_000_000_000, timeout <= 300_000_000_000 else {
                        throw ConfigError(path: "registry.tls.handshakeTimeout", message: "must be between 1s and 5m")
                    }
                    files.handshakeTimeout = timeout
                }
                try tls.finish()
                registry.tls = files
            }
            if registry.push == .authenticated, registry.users == nil {
                throw ConfigError(
                    path: "registry.users",
                    message: "registry.push is authenticated: name the htpasswd file, e.g. \"/etc/satellite-lite/htpasswd\" (htpasswd -B -c FILE USER)")
            }
            try reader.finish()
        }
        if var reader = try root.object("upstream") {
            guard let url = try reader.string("url") else {
                throw ConfigError(path: "upstream.url", message: "is required when upstream is set")
            }
            guard UpstreamURL(url) != nil else {
                throw ConfigError(
                    path: "upstream.url",
                    message: "\"\(url)\" is not an http:// or https:// URL of a registry host, e.g. \"https://harbor.example.com\"")
            }
            var upstream = Upstream(url: url)
            upstream.username = try reader.string("username")
            upstream.passwordFile = try reader.string("passwordFile")
            upstream.passwordEnv = try reader.string("passwordEnv")
            upstream.caFile = try reader.string("caFile")
            upstream.insecure = try reader.bool("insecure") ?? false
            if upstream.passwordFile != nil, upstream.passwordEnv != nil {
                throw ConfigError(path: "upstream.passwordEnv", message: "set either passwordFile or passwordEnv, not both")
            }
            if upstream.username == nil, upstream.passwordFile != nil || upstream.passwordEnv != nil {
                throw ConfigError(path: "upstream.username", message: "is required when a password is configured")
            }
            self.upstream = upstream
            try reader.finish()
        }
        if var reader = try root.object("trust") {
            for (index, item) in (try reader.array("policies") ?? []).enumerated() {
                let path = "trust.policies[\(index)]"
                var policyReader = try ObjectReader(item, path: path)
                guard let match = try policyReader.string("match"), !match.isEmpty else {
                    throw ConfigError(path: "\(path).match", message: "name the repositories, e.g. \"factory/**\"")
                }
                guard let keys = try policyReader.stringArray("keys"), !keys.isEmpty, !keys.contains(where: \.isEmpty) else {
                    throw ConfigError(path: "\(path).keys", message: "list at least one PEM public key file, e.g. [\"/etc/satellite-lite/cosign.pub\"]")
                }
                var policy = Trust.Policy(match: match, keys: keys)
                if let action = try policyReader.string("action") {
                    guard action == "require" || action == "warn" else {
                        throw ConfigError(path: "\(path).action", message: "\"\(action)\" is not require or warn")
                    }
                    policy.action = action
                }
                try policyReader.finish()
                trust.policies.append(policy)
            }
            try reader.finish()
        }
        if var reader = try root.object("proxy") {
            proxy = try Self.readProxy(&reader)
            try reader.finish()
        }
        if var reader = try root.object("peers") {
            peers = try Self.readPeers(&reader)
            try reader.finish()
            try Self.checkPeers(peers, registry: registry)
        }
        try readBundles(&root)
        if var reader = try root.object("groundControl") {
            groundControl = try GroundControl(reader: &reader)
            try reader.finish()
        }
        if var reader = try root.object("state") {
            if let images = try reader.stringArray("images") {
                state.images = try images.enumerated().map { index, text in
                    guard let reference = ImageReference(text) else {
                        throw ConfigError(
                            path: "state.images[\(index)]",
                            message: "\"\(text)\" is not a repository path with :tag or @sha256:digest, e.g. \"library/nginx:1.27\"")
                    }
                    return reference
                }
            }
            state.artifact = try reader.string("artifact")
            state.file = try reader.string("file")
            if let interval = try reader.duration("interval") {
                guard interval >= 1_000_000_000 else {
                    throw ConfigError(path: "state.interval", message: "must be at least 1s")
                }
                state.interval = interval
            }
            let sources = [!state.images.isEmpty, state.artifact != nil, state.file != nil].filter { $0 }.count
            if sources > 1 {
                throw ConfigError(path: "state", message: "set only one of images, artifact and file")
            }
            if let artifact = state.artifact, ImageReference(artifact) == nil {
                throw ConfigError(
                    path: "state.artifact",
                    message: "\"\(artifact)\" is not a repository path with a tag, e.g. \"satellite/satellite-state/edge-01/state:latest\"")
            }
            try reader.finish()
        }
        if var reader = try root.object("sync") {
            sync.bandwidth = try reader.rate("bandwidth")
            sync.concurrency = try reader.integer("concurrency", range: 1...32).map { Int($0) }
            if let timeout = try reader.duration("timeout") {
                guard timeout >= 1_000_000_000 else {
                    throw ConfigError(path: "sync.timeout", message: "must be at least 1s")
                }
                sync.timeout = timeout
            }
            if let platform = try reader.string("platform") {
                let parts = platform.split(separator: "/", omittingEmptySubsequences: false)
                guard platform == "all" || ((2...3).contains(parts.count) && parts.allSatisfy { !$0.isEmpty }) else {
                    throw ConfigError(
                        path: "sync.platform", message: "\"\(platform)\" is not os/architecture[/variant] (e.g. \"linux/arm/v7\") or \"all\"")
                }
                sync.platform = platform
            }
            try sync.readWAN(&reader)
            try reader.finish()
        }
        if let items = try root.array("hooks") {
            hooks = try items.enumerated().map { index, item in
                var reader = try ObjectReader(item, path: "hooks[\(index)]")
                guard let on = try reader.string("on") else {
                    throw ConfigError(path: reader.keyPath("on"), message: "is required")
                }
                guard let event = Event(rawValue: on) else {
                    throw ConfigError(
                        path: reader.keyPath("on"),
                        message: "\"\(on)\" is not an event; use one of \(Event.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                guard let run = try reader.string("run"), !run.isEmpty else {
                    throw ConfigError(path: reader.keyPath("run"), message: "is required: the shell command to run")
                }
                let hook = Hook(on: event, match: try reader.string("match"), run: run, timeout: try reader.duration("timeout"))
                try reader.finish()
                return hook
            }
        }
        try root.finish()
        try validateProxy()
        if upstream == nil, !state.images.isEmpty || state.artifact != nil || state.file != nil {
            throw ConfigError(path: "upstream", message: "a desired state is set but no upstream to sync it from")
        }
    }

    /// Parses config text; `source` names the file in error messages.
    public init(text: String, source: String) throws {
        try self.init(json: JSONValue.parse(Array(text.utf8), source: source))
    }

    /// The embedded default: store in ./satellite-data, listen on 127.0.0.1:5000, the profile
    /// detected for this machine, no upstream (serve only).
    public static let embeddedDefault = ConfigFile()
}

/// The parts of `upstream.url` the sync client needs.
public struct UpstreamURL: Sendable, Equatable {
    public var scheme: String
    /// host[:port], as it appears in the URL.
    public var authority: String

    public init?(_ text: String) {
        let lower = text.lowercased()
        let scheme: String
        if lower.hasPrefix("https://") {
            scheme = "https"
        } else if lower.hasPrefix("http://") {
            scheme = "http"
        } else {
            return nil
        }
        var rest = text.dropFirst(scheme.count + 3)
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains(where: \.isWhitespace) else {
            return nil
        }
        self.scheme = scheme
        self.authority = String(rest)
    }

    public var base: String { "\(scheme)://\(authority)" }
}
