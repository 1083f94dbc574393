import OCICore

/// A loaded config with its hardware profile: the effective value of every tunable.
public struct Settings: Sendable {
    public var config: ConfigFile
    public var profile: HardwareProfile
    /// Why this profile was chosen (named in the config, or what detection saw).
    public var profileReason: String
    /// Where the config came from: a path, or "embedded default".
    public var source: String

    public init(config: ConfigFile, profile: HardwareProfile, profileReason: String, source: String) {
        self.config = config
        self.profile = profile
        self.profileReason = profileReason
        self.source = source
    }

    /// The config file used when `--config` is not given and this one exists.
    public static let systemConfigPath = "/etc/satellite-lite/config.json"

    /// Loads `--config PATH`, else /etc/satellite-lite/config.json if it exists, else the
    /// embedded default; then resolves its profile.
    ///
    /// Throws ``ConfigError`` naming the file and the key at fault.
    public static func load(configPath: String?) throws -> Settings {
        let path = configPath ?? (PosixFile.exists(systemConfigPath) ? systemConfigPath : nil)
        guard let path else {
            return try resolve(ConfigFile.embeddedDefault, source: "embedded default")
        }
        let bytes: [UInt8]
        do {
            bytes = try PosixFile.readAll(path: path, limit: 1 << 20)
        } catch {
            throw ConfigError(path: "", message: "cannot read config \(path): \(error)")
        }
        do {
            let config = try ConfigFile(json: JSONValue.parse(bytes, source: path))
            return try resolve(config, source: path)
        } catch var error as ConfigError {
            if !error.message.containsText(path) {
                error.message += " (in \(path))"
            }
            throw error
        }
    }

    /// Resolves the config's profile: a built-in name, a path to a profile file, or "auto".
    public static func resolve(_ config: ConfigFile, source: String) throws -> Settings {
        if config.profile == "auto" {
            let detection = ProfileDetection.detect()
            return Settings(config: config, profile: detection.profile, profileReason: detection.reason, source: source)
        }
        if let profile = HardwareProfile.named(config.profile) {
            return Settings(config: config, profile: profile, profileReason: "named in the config", source: source)
        }
        if config.profile.contains(Character("/")) || config.profile.hasSuffix(".json") {
            let bytes: [UInt8]
            do {
                bytes = try PosixFile.readAll(path: config.profile, limit: 1 << 20)
            } catch {
                throw ConfigError(path: "profile", message: "cannot read profile file \(config.profile): \(error)")
            }
            let profile = try HardwareProfile(json: JSONValue.parse(bytes, source: config.profile), source: config.profile)
            return Settings(config: config, profile: profile, profileReason: "loaded from \(config.profile)", source: source)
        }
        throw ConfigError(
            path: "profile",
            message: "unknown profile \"\(config.profile)\"; use \"auto\", a path to a profile file, or one of: "
                + HardwareProfile.builtIn.map(\.name).joined(separator: ", "))
    }

    /// Bytes per second over all transfers (0 = unlimited).
    public var bandwidth: Int64 { config.sync.bandwidth ?? profile.sync.bandwidth }
    public var syncConcurrency: Int { config.sync.concurrency ?? profile.sync.concurrency }
    public var quota: StorageAmount { config.storage.quota ?? profile.storage.quota }
    public var maxConnections: Int { config.registry.maxConnections ?? profile.registry.maxConnections }
}
