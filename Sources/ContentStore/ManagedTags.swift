import JSONCoding
import OCICore

/// The tags the agent put in the store (as opposed to tags a user pushed), with the digest
/// each points at: only these are removed when they leave the desired state, and an
/// `image-updated` event fires only when one of them changes digest.
///
/// It also remembers the manifests the agent published and then stopped wanting (a tag
/// moved to a newer digest, or left the desired state): their content is the agent's own,
/// so garbage collection may take it back at once instead of after the grace period meant
/// for content of unknown origin. Kept in `sync/managed.json` (``StoreLayout/managedTags``).
public struct ManagedTags: Codable, Sendable {
    /// `repository:tag` -> digest.
    public var tags: [String: String] = [:]
    /// Manifest digest -> seconds since the epoch when the agent released it.
    public var released: [String: Int64]? = nil
    /// `repository:tag` -> digest of the tags the pull-through proxy published: the agent's
    /// too (no client pushes over them), but cache, not desired state: the sync never
    /// removes them and garbage collection does not count them as roots.
    public var proxied: [String: String]? = nil

    public init() {}

    public static func read(store: BlobStore) -> ManagedTags {
        guard let bytes = try? PosixFile.readAll(path: store.layout.managedTags, limit: 16 << 20),
            let decoded = try? JSONCoder.decode(ManagedTags.self, from: bytes)
        else { return ManagedTags() }
        return decoded
    }

    /// Writes the file atomically, forgetting released manifests that are gone.
    public func write(store: BlobStore) throws {
        var copy = self
        if let released = copy.released {
            let kept = released.filter { Digest($0.key).map(store.hasBlob) ?? false }
            copy.released = kept.isEmpty ? nil : kept
        }
        try PosixFile.makeDirectories(store.layout.sync)
        try PosixFile.writeAtomically(
            store.layout.managedTags, JSONCoder.encode(copy), durable: store.configuration.fsyncOnCommit)
    }

    /// Manifests the agent released, as digests.
    public var releasedManifests: Set<Digest> { Set((released ?? [:]).keys.compactMap { Digest($0) }) }

    mutating func release(_ digest: String) {
        var map = released ?? [:]
        map[digest] = MonotonicClock.wallSeconds()
        released = map
    }

    mutating func reclaim(_ digest: String) {
        guard released?[digest] != nil else { return }
        released?[digest] = nil
        if released?.isEmpty == true { released = nil }
    }
}
