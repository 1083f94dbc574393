extension ConfigFile.GroundControl {
    /// Reads the `groundControl` object.
    ///
    /// Throws ``ConfigError`` naming the key at fault.
    init(reader: inout ObjectReader) throws {
        guard let url = try reader.string("url") else {
            throw ConfigError(path: "groundControl.url", message: "is required when groundControl is set")
        }
        guard let parsed = UpstreamURL(url) else {
            throw ConfigError(
                path: "groundControl.url",
                message: "\"\(url)\" is not an http:// or https:// URL of a host, e.g. \"https://gc.example.com\"")
        }
        self.init(url: parsed.base)
        tokenFile = try reader.string("tokenFile")
        token = try reader.string("token")
        if tokenFile != nil, token != nil {
            throw ConfigError(path: "groundControl.token", message: "set either tokenFile or token, not both")
        }
        if let token, token.isEmpty {
            throw ConfigError(path: "groundControl.token", message: "must not be empty")
        }
        if let interval = try reader.duration("heartbeat") {
            guard interval >= 1_000_000_000 else {
                throw ConfigError(path: "groundControl.heartbeat", message: "must be at least 1s")
            }
            heartbeat = interval
        }
        remoteConfig = try reader.bool("remoteConfig") ?? true
        remoteHooks = try reader.bool("remoteHooks") ?? false
        caFile = try reader.string("caFile")
        insecure = try reader.bool("insecure") ?? false
    }

    /// Whether requests may go out as plain HTTP or skip certificate checks: only with an
    /// explicit `http://` URL or `insecure: true`.
    public var isPlainHTTP: Bool { url.lowercased().hasPrefix("http://") }
}
