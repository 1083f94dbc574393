import ContentStore
import OCICore

/// Somewhere content comes from: the upstream registry today, later a LAN peer or a bundle.
/// A source only moves bytes; the engine decides what to fetch, and the retry, resume and
/// commit loop (``BlobTransfer``) and the store's publish step are the same for every source.
///
/// Errors are ``SyncError``s: `link` (transient: the transfer is retried and resumes from
/// the ingest's offset), `corrupt` (the partial file is discarded), `refused`, `notFound`.
public protocol ContentSource: Sendable {
    /// Names the source in messages ("upstream").
    var name: String { get }

    /// Body bytes received from the source so far, all requests.
    var bytesReceived: Int64 { get }

    /// A manifest or index by tag or digest, its bytes exactly as the source holds them and
    /// checked against the digest it was asked by (or announced).
    func manifest(_ repository: RepositoryName, reference: Reference) async throws -> ImagePublisher.ManifestContent

    /// The digest the source holds for `tag`, without the manifest itself; nil when it
    /// cannot say cheaply (the engine then fetches the manifest).
    func manifestDigest(_ repository: RepositoryName, tag: String) async throws -> Digest?

    /// A small blob (a state document) whole in memory, at most `limit` bytes. The caller
    /// checks its digest.
    func smallBlob(_ repository: RepositoryName, digest: Digest, limit: Int) async throws -> [UInt8]

    /// One attempt at blob `digest`: writes its bytes from `ingest.offset` on into `ingest`
    /// (which the caller owns: it checkpoints, commits or discards it) and returns when the
    /// source has sent what it had. A source that cannot continue at the offset calls
    /// `ingest.reset()` and sends the whole blob. More than `size` bytes (when `size` >= 0)
    /// is `corrupt`. `progress` gets the bytes held so far.
    func fetchBlob(
        _ digest: Digest, size: Int64, repository: RepositoryName, into ingest: Ingest, progress: @escaping @Sendable (Int64) -> Void
    ) async throws
}
