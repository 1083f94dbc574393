import JSONCoding

/// `artifacts.json` of `satellite/satellite-state/<name>/state`: which group states and
/// which config a satellite follows (Harbor Satellite's `SatelliteStateArtifact`).
public struct SatelliteState: Codable, Sendable, Equatable {
    /// Group state references, `<registry>/satellite/group-state/<group>/state:latest`.
    public var states: [String]
    /// Config state reference, `<registry>/satellite/config-state/<config>/state:latest`.
    public var config: String

    public init(states: [String], config: String) {
        self.states = states
        self.config = config
    }

    enum CodingKeys: String, CodingKey {
        case states, config
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        states = try c.decodeIfPresent([String].self, forKey: .states) ?? []
        config = try c.decodeIfPresent(String.self, forKey: .config) ?? ""
    }

    /// Empty fields are left out, as Go's `omitempty` does.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if !states.isEmpty { try c.encode(states, forKey: .states) }
        if !config.isEmpty { try c.encode(config, forKey: .config) }
    }
}

/// `artifacts.json` of `satellite/group-state/<group>/state`: the images a group of
/// satellites must hold (Harbor Satellite's `StateArtifact`).
public struct GroupState: Codable, Sendable, Equatable {
    public var group: String
    /// The registry the repositories live in (Harbor's URL).
    public var registry: String
    public var artifacts: [GroupArtifact]

    public init(group: String, registry: String, artifacts: [GroupArtifact]) {
        self.group = group
        self.registry = registry
        self.artifacts = artifacts
    }

    enum CodingKeys: String, CodingKey {
        case group, registry, artifacts
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        group = try c.decodeIfPresent(String.self, forKey: .group) ?? ""
        registry = try c.decodeIfPresent(String.self, forKey: .registry) ?? ""
        artifacts = try c.decodeIfPresent([GroupArtifact].self, forKey: .artifacts) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if !group.isEmpty { try c.encode(group, forKey: .group) }
        if !registry.isEmpty { try c.encode(registry, forKey: .registry) }
        if !artifacts.isEmpty { try c.encode(artifacts, forKey: .artifacts) }
    }
}

/// One entry of a group state (Harbor Satellite's `Artifact`).
public struct GroupArtifact: Codable, Sendable, Equatable {
    /// Repository path, possibly with the registry host in front (`harbor.example.com/proj/app`).
    public var repository: String
    public var tag: [String]
    /// Harbor labels, passed through as they came.
    public var labels: JSON?
    /// `IMAGE` for images; other types are not synced.
    public var type: String
    /// `sha256:…` pins the entry; empty follows the tags.
    public var digest: String
    /// A `deleted` entry is no longer wanted.
    public var deleted: Bool

    public init(
        repository: String, tag: [String] = [], labels: JSON? = nil, type: String = "IMAGE", digest: String = "",
        deleted: Bool = false
    ) {
        self.repository = repository
        self.tag = tag
        self.labels = labels
        self.type = type
        self.digest = digest
        self.deleted = deleted
    }

    enum CodingKeys: String, CodingKey {
        case repository, tag, labels, type, digest, deleted
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        repository = try c.decodeIfPresent(String.self, forKey: .repository) ?? ""
        tag = try c.decodeIfPresent([String].self, forKey: .tag) ?? []
        labels = try c.decodeIfPresent(JSON.self, forKey: .labels)
        if labels == .null { labels = nil }
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
        digest = try c.decodeIfPresent(String.self, forKey: .digest) ?? ""
        deleted = try c.decodeIfPresent(Bool.self, forKey: .deleted) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if !repository.isEmpty { try c.encode(repository, forKey: .repository) }
        if !tag.isEmpty { try c.encode(tag, forKey: .tag) }
        if let labels { try c.encode(labels, forKey: .labels) }
        if !type.isEmpty { try c.encode(type, forKey: .type) }
        if !digest.isEmpty { try c.encode(digest, forKey: .digest) }
        if deleted { try c.encode(deleted, forKey: .deleted) }
    }

    /// Whether a satellite should hold this entry: not deleted, and an image (an entry
    /// without a type counts as one).
    public var isWantedImage: Bool {
        !deleted && (type.isEmpty || type.uppercased() == "IMAGE")
    }
}

/// `artifacts.json` of `satellite/config-state/<config>/state`: Harbor Satellite's
/// `config.Config` (`state_config`, `app_config`, `zot_config`) plus our own
/// `satellite_lite` object, which holds keys of the satellite-lite config file.
///
/// The three documents are kept as JSON trees, so that keys this version does not know
/// pass through unchanged; ``AppConfig`` reads the ones satellite-lite honours.
public struct ConfigState: Codable, Sendable, Equatable {
    public var stateConfig: JSON?
    public var appConfig: JSON?
    public var zotConfig: JSON?
    public var satelliteLite: JSON?

    public init(stateConfig: JSON? = nil, appConfig: JSON? = nil, zotConfig: JSON? = nil, satelliteLite: JSON? = nil) {
        self.stateConfig = stateConfig
        self.appConfig = appConfig
        self.zotConfig = zotConfig
        self.satelliteLite = satelliteLite
    }

    enum CodingKeys: String, CodingKey {
        case stateConfig = "state_config"
        case appConfig = "app_config"
        case zotConfig = "zot_config"
        case satelliteLite = "satellite_lite"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func tree(_ key: CodingKeys) throws -> JSON? {
            let value = try c.decodeIfPresent(JSON.self, forKey: key)
            return value == .null ? nil : value
        }
        stateConfig = try tree(.stateConfig)
        appConfig = try tree(.appConfig)
        zotConfig = try tree(.zotConfig)
        satelliteLite = try tree(.satelliteLite)
    }

    /// The `app_config` keys satellite-lite can honour.
    public var app: AppConfig { AppConfig(appConfig ?? .object([])) }
}

/// Typed reads of Harbor Satellite's `app_config` (pkg/config/config.go `AppConfig`).
public struct AppConfig: Sendable, Equatable {
    public var tree: JSON

    public init(_ tree: JSON) {
        self.tree = tree
    }

    /// `@every 00h05m00s`: how often the state is replicated.
    public var stateReplicationInterval: String? { string("state_replication_interval") }
    /// `@every 00h00m30s`: how often the satellite heartbeats.
    public var heartbeatInterval: String? { string("heartbeat_interval") }
    /// `debug`, `info`, `warn`, `error`, ….
    public var logLevel: String? { string("log_level") }

    func string(_ key: String) -> String? {
        guard case .string(let text)? = tree[key], !text.isEmpty else { return nil }
        return text
    }
}
