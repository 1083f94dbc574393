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
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    var isRetryable: Bool { kind == .link }
}
