import OCICore

/// Something the sync engine did that hooks may react to.
public struct SyncEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case imageUpdated = "image-updated"
        case imageRemoved = "image-removed"
        case syncCompleted = "sync-completed"
        case syncFailed = "sync-failed"
        case gcCompleted = "gc-completed"
        /// A manifest had no valid signature under `trust.policies` (`require`: the tag kept its
        /// previous manifest; `warn`: it moved anyway).
        case trustRejected = "trust-rejected"
        /// A bundle was imported and its state published (`message` names it).
        case bundleImported = "bundle-imported"
    }

    public var kind: Kind
    public var repository: String
    public var tag: String
    public var digest: String
    public var previousDigest: String
    /// The error of a sync-failed; a summary of a sync-completed.
    public var message: String

    public init(
        kind: Kind, repository: String = "", tag: String = "", digest: String = "", previousDigest: String = "", message: String = ""
    ) {
        self.kind = kind
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.previousDigest = previousDigest
        self.message = message
    }
}

/// A prepared event: recorded, waiting for the change it announces.
public struct SyncEventToken: Sendable {
    public let value: any Sendable

    public init(_ value: any Sendable) {
        self.value = value
    }
}

/// Receives events. Changes are announced in two phases so that a crash at any instant
/// neither loses an event nor runs one for a change that never happened: `prepare` durably
/// records the event before the tag moves, `commit` releases it afterwards, `abandon` drops
/// it if the move failed; `recover` settles what a dead process left prepared.
public protocol SyncEventSink: Sendable {
    /// Durably records an event about to happen; nil when nothing listens for it.
    func prepare(_ event: SyncEvent) throws -> SyncEventToken?
    func commit(_ token: SyncEventToken) throws
    func abandon(_ token: SyncEventToken)
    /// Commits the prepared events whose change `happened`, abandons the others.
    func recover(happened: (SyncEvent) -> Bool) throws
    /// Records an event that is not tied to a change (sync-completed, sync-failed).
    func record(_ event: SyncEvent) throws
}
