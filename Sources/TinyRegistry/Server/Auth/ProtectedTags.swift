import ContentStore
import Synchronization

/// The tags the agent owns, which no client may push over or delete whatever `registry.push`
/// allows (principle 9): the desired state named in the config, and every tag the sync has
/// published, as recorded in the store's ``ManagedTags`` (`sync/managed.json`) (read at each check, so a
/// `satellite-lite sync` run by hand and state artifacts count at once).
public final class ProtectedTags: Sendable {
    /// repository → tags named by the config (before the first sync publishes them).
    private let configured = Mutex<[String: Set<String>]>([:])
    /// The store whose record of the agent's tags (``ManagedTags``) counts; nil for none.
    private let store: BlobStore?

    public init(store: BlobStore? = nil) {
        self.store = store
    }

    /// Replaces the configured set: pairs of repository and tag.
    public func replace(with references: [(repository: String, tag: String)]) {
        var table: [String: Set<String>] = [:]
        for reference in references { table[reference.repository, default: []].insert(reference.tag) }
        configured.withLock { $0 = table }
    }

    public func contains(repository: String, tag: String) -> Bool {
        if configured.withLock({ $0[repository]?.contains(tag) ?? false }) { return true }
        return recorded(proxied: true).contains("\(repository):\(tag)")
    }

    /// Whether the tag belongs to the desired state (the sync's, not the proxy's cache): the
    /// pull-through never rechecks it upstream.
    public func ownedBySync(repository: String, tag: String) -> Bool {
        if configured.withLock({ $0[repository]?.contains(tag) ?? false }) { return true }
        return recorded(proxied: false).contains("\(repository):\(tag)")
    }

    /// Whether the agent owns any tag in `repository`.
    public func protects(repository: String) -> Bool {
        if configured.withLock({ !($0[repository]?.isEmpty ?? true) }) { return true }
        // A repository name has no ':', so the prefix is exact.
        return recorded(proxied: false).contains { $0.hasPrefix("\(repository):") }
    }

    /// The agent's recorded tags; with `proxied`, the pull-through's tags too.
    private func recorded(proxied: Bool) -> Set<String> {
        guard let store else { return [] }
        let managed = ManagedTags.read(store: store)
        var keys = Set(managed.tags.keys)
        if proxied { keys.formUnion((managed.proxied ?? [:]).keys) }
        return keys
    }

    func denial(_ repository: String, _ tag: String, _ verb: String) -> RegistryError {
        RegistryError(
            .denied,
            "\(repository):\(tag) belongs to the desired state: only the sync may \(verb) it (remove it from the state first)")
    }
}
