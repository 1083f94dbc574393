import JSONCoding

/// The last good remote config, kept in `fleet/config.json` (a real rollback: an invalid
/// new one never replaces it, and it survives restarts).
public struct AppliedConfig: Codable, Sendable, Equatable {
    /// Manifest digest of the config-state artifact.
    public var digest: String
    /// The config-state document as read (its `artifacts.json`).
    public var document: JSON

    public init(digest: String, document: JSON) {
        self.digest = digest
        self.document = document
    }
}
