import OCICore

/// The pull-through cache behind the registry (`proxy` in the config): what the registry
/// asks when a pull of an allowed repository misses the store. The registry (TinyRegistry)
/// only knows this seam; the implementation lives in Sync (`PullThroughProxy`), which talks
/// to the upstream and its mirrors, and makes content visible through the one publish step.
public protocol PullThrough: Sendable {
    /// Where a client's repository name comes from: the local repository it is stored under
    /// and the upstream repository it is fetched from. `namespace` is containerd's `?ns=`
    /// (the registry the client meant). Nil when there is no upstream for it; a route that
    /// `proxy.allow` refuses is returned with `allowed` false (its name still maps to the
    /// store); either way the registry then answers from the store alone.
    func route(_ name: RepositoryName, namespace: String?) -> PullThroughRoute?

    /// Whether the cached `tag` is due for a recheck upstream (`proxy.tagRecheck`).
    func isStale(_ route: PullThroughRoute, tag: String) -> Bool

    /// Brings a manifest (by tag or digest) into the store through the publish step; returns
    /// when the store can answer. Offline, a cached tag is left as it is and this returns.
    ///
    /// Throws ``PullThroughError``.
    func fetchManifest(_ route: PullThroughRoute, reference: Reference) async throws

    /// The size of blob `digest`, as a manifest of the repository announced it or as the
    /// upstream answers a HEAD.
    ///
    /// Throws ``PullThroughError``.
    func blobSize(_ route: PullThroughRoute, digest: Digest) async throws -> Int64

    /// Starts the upstream transfer of blob `digest`, or joins the one in progress: the
    /// bytes land in the store's ingest file, which clients follow (``GrowingBlob``).
    ///
    /// Throws ``PullThroughError`` when the transfer cannot start (unknown, refused,
    /// offline); a failure later shows in the ``GrowingBlob``.
    func fetchBlob(_ route: PullThroughRoute, digest: Digest) async throws -> GrowingBlob

    /// The upstream's referrers index of `digest` (its bytes), nil when the upstream has none.
    ///
    /// Throws ``PullThroughError``.
    func referrers(_ route: PullThroughRoute, of digest: Digest) async throws -> [UInt8]?

    /// A pull of a proxied repository answered from the store.
    func recordHit()
}

/// A client's repository as the pull-through sees it.
public struct PullThroughRoute: Sendable, Hashable, CustomStringConvertible {
    /// The repository in the store: `<registry>/<repository>` for a mirror.
    public var local: RepositoryName
    /// The repository on the upstream.
    public var remote: RepositoryName
    /// The mirror's registry (`docker.io`), or nil for the configured upstream.
    public var registry: String?
    /// `proxy.allow` admits the local repository: a miss may go upstream. When false the
    /// store alone answers (404 on a miss) and no upstream is contacted.
    public var allowed: Bool

    public init(local: RepositoryName, remote: RepositoryName, registry: String?, allowed: Bool = true) {
        self.local = local
        self.remote = remote
        self.registry = registry
        self.allowed = allowed
    }

    public var description: String { registry.map { "\($0)/\(remote)" } ?? remote.value }
}

/// Why a pull-through could not answer, with the OCI error it becomes on the wire.
public struct PullThroughError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// The upstream has no such content (404 MANIFEST_UNKNOWN / BLOB_UNKNOWN).
        case notFound
        /// The upstream refused us or the policy refused the content (403 DENIED).
        case denied
        /// The upstream cannot be reached, or not now (window, budget): 503.
        case unavailable
        /// The upstream sent content that does not match its digest, or garbage: 502.
        case badUpstream
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
