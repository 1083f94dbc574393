import Fleet

/// What onboarding got from Ground Control, kept in `fleet/link.json`.
public struct LinkRecord: Codable, Sendable, Equatable {
    /// Ground Control's URL this satellite onboarded with.
    public var groundControl: String
    /// The satellite's name (from its state reference).
    public var name: String
    /// `<registry>/satellite/satellite-state/<name>/state:latest`.
    public var state: String
    public var registry: RegistryCredentials
    /// Unix seconds.
    public var onboardedAt: Int64
    /// Unix seconds of the last credential refresh.
    public var refreshedAt: Int64?

    public init(groundControl: String, name: String, state: String, registry: RegistryCredentials, onboardedAt: Int64) {
        self.groundControl = groundControl
        self.name = name
        self.state = state
        self.registry = registry
        self.onboardedAt = onboardedAt
    }

    /// The central registry's base URL with a scheme (Harbor answers with one; a bare
    /// host gets https).
    public var registryURL: String {
        var url = registry.url
        while url.hasSuffix("/") { url.removeLast() }
        let lower = url.lowercased()
        return lower.hasPrefix("http://") || lower.hasPrefix("https://") ? url : "https://\(url)"
    }

    /// The state artifact as a repository path in that registry
    /// (`satellite/satellite-state/<name>/state:latest`).
    public var stateArtifact: String {
        var text = state
        for scheme in ["https://", "http://"] where text.lowercased().hasPrefix(scheme) { text = String(text.dropFirst(scheme.count)) }
        let marker = "\(FleetNames.project)/satellite-state/"
        var index = text.startIndex
        while index < text.endIndex {
            if text[index...].hasPrefix(marker) { return String(text[index...]) }
            index = text.index(after: index)
        }
        return text
    }
}
