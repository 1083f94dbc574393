import JSONCoding
import ContentStore
import OCICore

/// What `satellite-lite status` shows about syncing: written by the sync engine to
/// `<store>/sync/status.json` (atomically, about once a second during a pass), read by any
/// process.
public struct SyncStatus: Codable, Sendable {
    public struct Image: Codable, Sendable {
        public var image: String
        /// present, syncing, missing or failed.
        public var state: String
        public var digest: String?
        public var error: String?
    }

    public struct Transfer: Codable, Sendable {
        public var repository: String
        public var digest: String
        public var size: Int64
        public var done: Int64
        /// Bytes per second over the transfer so far.
        public var rate: Int64
        /// Seconds left at that rate (nil when unknown).
        public var eta: Int64?
    }

    public var images: [Image] = []
    public var transfers: [Transfer] = []
    /// Seconds since the epoch.
    public var lastSyncStarted: Int64?
    public var lastSyncFinished: Int64?
    public var lastSyncOK: Bool?
    public var lastSyncError: String?
    public var running: Bool = false
    public var pid: Int32?

    public init() {}

    static func path(store: BlobStore) -> String { store.layout.syncStatus }

    /// Reads the status a sync engine left in `store`; nil when none ever ran.
    public static func read(store: BlobStore) -> SyncStatus? {
        guard let bytes = try? PosixFile.readAll(path: path(store: store), limit: 16 << 20) else { return nil }
        return try? JSONCoder.decode(SyncStatus.self, from: bytes)
    }

    func write(store: BlobStore) {
        guard let bytes = try? JSONCoder.encode(self) else { return }
        try? PosixFile.writeAtomically(Self.path(store: store), Array(bytes), durable: false)
    }
}
