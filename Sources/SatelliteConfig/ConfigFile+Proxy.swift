import OCICore

extension ConfigFile {
    /// `proxy`: the pull-through cache and registry mirror (docs/proxy.md).
    public struct Proxy: Sendable, Equatable {
        public var enabled: Bool = false
        /// Globs over the local repository path (`*` within a segment, `**` across); a mirror's
        /// repositories are `<registry>/<repository>`. Empty: everything.
        public var allow: [String] = []
        /// How often a cached tag is checked against the upstream while online (nanoseconds).
        public var tagRecheck: Int64 = 5 * 60 * 1_000_000_000
        public var mirrors: [Mirror] = []

        /// Another registry served through this one: containerd's `?ns=<registry>` or the
        /// path prefix `/v2/<registry>/…`.
        public struct Mirror: Sendable, Equatable {
            /// The registry's name as clients spell it: `docker.io`, `quay.io`.
            public var registry: String
            /// Where to fetch from: `https://registry-1.docker.io`.
            public var url: String
            public var username: String?
            public var passwordFile: String?
            public var caFile: String?
            public var insecure: Bool = false

            public init(registry: String, url: String) {
                self.registry = registry
                self.url = url
            }
        }

        public init() {}
    }

    /// Reads the `proxy` object.
    ///
    /// Throws ``ConfigError`` naming the key at fault.
    static func readProxy(_ reader: inout ObjectReader) throws -> Proxy {
        var proxy = Proxy()
        proxy.enabled = try reader.bool("enabled") ?? true
        if let allow = try reader.stringArray("allow") {
            for (index, glob) in allow.enumerated() where glob.isEmpty || glob.contains(where: \.isWhitespace) {
                throw ConfigError(path: "proxy.allow[\(index)]", message: "\"\(glob)\" is not a repository glob, e.g. \"library/**\"")
            }
            proxy.allow = allow
        }
        if let recheck = try reader.duration("tagRecheck") {
            guard recheck >= 0 else { throw ConfigError(path: "proxy.tagRecheck", message: "must not be negative") }
            proxy.tagRecheck = recheck
        }
        var seen = Set<String>()
        for (index, item) in (try reader.array("mirrors") ?? []).enumerated() {
            let path = "proxy.mirrors[\(index)]"
            var mirrorReader = try ObjectReader(item, path: path)
            guard let registry = try mirrorReader.string("registry"), Self.isRegistryName(registry) else {
                throw ConfigError(path: "\(path).registry", message: "name the registry as clients spell it, e.g. \"docker.io\"")
            }
            guard seen.insert(registry).inserted else {
                throw ConfigError(path: "\(path).registry", message: "\(registry) is listed twice")
            }
            guard let url = try mirrorReader.string("url"), let parsed = UpstreamURL(url) else {
                throw ConfigError(path: "\(path).url", message: "is required: an http:// or https:// URL, e.g. \"https://registry-1.docker.io\"")
            }
            var mirror = Proxy.Mirror(registry: registry, url: parsed.base)
            mirror.username = try mirrorReader.string("username")
            mirror.passwordFile = try mirrorReader.string("passwordFile")
            mirror.caFile = try mirrorReader.string("caFile")
            mirror.insecure = try mirrorReader.bool("insecure") ?? false
            if mirror.username == nil, mirror.passwordFile != nil {
                throw ConfigError(path: "\(path).username", message: "is required when a password is configured")
            }
            try mirrorReader.finish()
            proxy.mirrors.append(mirror)
        }
        return proxy
    }

    /// A registry host as it appears in image names and containerd's `ns`: lower-case DNS
    /// labels with dots, an optional port; it must contain a dot or a port or be `localhost`,
    /// as in the distribution reference grammar, so it cannot be mistaken for a repository.
    public static func isRegistryName(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 253 else { return false }
        var host = Substring(text)
        if let colon = text.lastIndex(of: ":") {
            let port = text[text.index(after: colon)...]
            guard let number = Int(port), (1...65535).contains(number) else { return false }
            host = text[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard !label.isEmpty, label.count <= 63, label.first != "-", label.last != "-",
                label.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" })
            else { return false }
        }
        return labels.count > 1 || host != Substring(text) || host == "localhost"
    }
}

extension ConfigFile {
    /// A proxy needs somewhere to fetch from: the upstream (or Ground Control, which
    /// supplies it) or a mirror.
    func validateProxy() throws {
        guard proxy.enabled, upstream == nil, groundControl == nil, proxy.mirrors.isEmpty else { return }
        throw ConfigError(
            path: "proxy", message: "the proxy is enabled but there is nothing to fetch from: set \"upstream\" or \"proxy.mirrors\"")
    }
}
