import ContentStore
import JSONCoding
import OCICore

/// The last bundle this store applied (`bundles/applied.json`): a differential bundle
/// applies only on top of it, and an older bundle is refused (no replay of an old state).
public struct BundleRecord: Codable, Sendable, Equatable {
    public var sequence: Int64
    public var base: Int64?
    public var created: String
    public var signer: String?
    /// Seconds since the epoch.
    public var appliedAt: Int64
    public var file: String
    public var images: [String]

    public init(sequence: Int64, base: Int64?, created: String, signer: String?, appliedAt: Int64, file: String, images: [String]) {
        self.sequence = sequence
        self.base = base
        self.created = created
        self.signer = signer
        self.appliedAt = appliedAt
        self.file = file
        self.images = images
    }

    public static func read(store: BlobStore) -> BundleRecord? {
        guard let bytes = try? PosixFile.readAll(path: store.layout.appliedBundle, limit: 1 << 20) else { return nil }
        return try? JSONCoder.decode(BundleRecord.self, from: bytes)
    }

    public func write(store: BlobStore) throws {
        try PosixFile.makeDirectories(store.layout.bundles)
        try PosixFile.writeAtomically(store.layout.appliedBundle, JSONCoder.encode(self), durable: true)
    }
}
