import OCICore
/// A sync failure as the CLI, the log and `status` show it: what failed and why.
public struct SyncError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable {
        /// The upstream cannot be reached or the link broke (retried, resumable).
        case link
        /// The upstream refused the credentials or the request.
        case refused
        /// The upstream has no such image.
        case notFound
        /// The upstream sent bytes that do not match their digest, or a malformed document.
        case corrupt
        /// The local store failed (disk full, permissions).
        case storage
        /// Cancelled by a stop request.
        case cancelled
        /// The WAN may not be used now (outside `sync.windows`, or `sync.budget` spent):
        /// not a broken link: no backoff, no giving up; the partial file stays and the
        /// transfer continues at `resumesAt`.
        case deferred
    }

    public var kind: Kind
    public var message: String
    /// For `deferred`: when the WAN opens again (wall seconds of the gate's clock); nil
    /// when it cannot be said (never, with the current config).
    public var resumesAt: Int64?

    public init(_ kind: Kind, _ message: String, resumesAt: Int64? = nil) {
        self.kind = kind
        self.message = message
        self.resumesAt = resumesAt
    }

    public var description: String { message }

    var isRetryable: Bool { kind == .link }
}
