import Fleet
import JSONCoding
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The signed heart of a bundle (`bundle.json`, the first entry of the tar, followed by
/// its detached signature `bundle.json.sig`): the desired state in Harbor Satellite's
/// group-state form, the images it resolved to, the sequence chain, and the digest and
/// size of every blob the tar carries and every blob the state needs. An import trusts
/// the tar only through this document: every entry after it must be one of its blobs.
public struct BundleDocument: Codable, Sendable, Equatable {
    public static let mediaType = "application/vnd.satellite-lite.bundle.v1+json"
    /// Tar entry names.
    public static let documentName = "bundle.json"
    public static let signatureName = "bundle.json.sig"

    public var mediaType: String = BundleDocument.mediaType
    /// This bundle's number: larger than every bundle created before it on that machine
    /// (creation time in seconds, or its base + 1).
    public var sequence: Int64
    /// The bundle this one is differential on (nil: a full bundle). A site applies it only
    /// when its last applied bundle is `base`; 0 means "built against what the site
    /// reported holding" (`--have`) when the site had applied none.
    public var base: Int64?
    /// RFC 3339 UTC.
    public var created: String
    /// Key id (``Trust/PublicKey/keyID``) of the signing key; nil for an unsigned bundle.
    public var signer: String?
    /// The whole desired state, as a Harbor Satellite group state.
    public var state: GroupState
    public var images: [Image]
    /// Blobs in this tar (`blobs/sha256/<hex>`), in tar order.
    public var blobs: [Blob]
    /// Every blob the desired state needs (manifests, configs, layers), carried or not.
    public var required: [Blob]

    /// One desired image as resolved when the bundle was made.
    public struct Image: Codable, Sendable, Equatable {
        public var repository: String
        /// Empty for an image pinned by digest only.
        public var tag: String
        /// The top manifest (or index).
        public var digest: String
        public var mediaType: String
        /// The index's children kept (the target's platform); empty for a plain manifest.
        public var children: [String]
        /// Bytes of every blob this image needs.
        public var size: Int64

        public init(repository: String, tag: String, digest: String, mediaType: String, children: [String], size: Int64) {
            self.repository = repository
            self.tag = tag
            self.digest = digest
            self.mediaType = mediaType
            self.children = children
            self.size = size
        }

        /// `repository:tag`, or `repository@digest`.
        public var reference: String { tag.isEmpty ? "\(repository)@\(digest)" : "\(repository):\(tag)" }
    }

    public struct Blob: Codable, Sendable, Equatable, Hashable {
        public var digest: String
        public var size: Int64

        public init(digest: String, size: Int64) {
            self.digest = digest
            self.size = size
        }
    }

    public init(
        sequence: Int64, base: Int64?, created: String, signer: String?, state: GroupState, images: [Image], blobs: [Blob],
        required: [Blob]
    ) {
        self.sequence = sequence
        self.base = base
        self.created = created
        self.signer = signer
        self.state = state
        self.images = images
        self.blobs = blobs
        self.required = required
    }

    /// The tar entry name of a blob.
    public static func entryName(_ digest: Digest) -> String { "blobs/\(digest.algorithm.rawValue)/\(digest.hex)" }

    /// Bytes of the blobs in the tar.
    public var carriedBytes: Int64 { blobs.reduce(0) { $0 + $1.size } }
    /// Bytes of everything the state needs.
    public var requiredBytes: Int64 { required.reduce(0) { $0 + $1.size } }

    /// Checks what an import relies on: the media type, digests that parse, sizes that are
    /// not negative, carried blobs that are required, images with valid names.
    ///
    /// Throws ``BundleError`` (`malformed`).
    public func validate() throws {
        guard mediaType == Self.mediaType else {
            throw BundleError(.malformed, "bundle.json has media type \"\(mediaType)\", not \(Self.mediaType)")
        }
        guard sequence > 0 else { throw BundleError(.malformed, "bundle.json: sequence must be positive") }
        if let base, base < 0 || base >= sequence {
            throw BundleError(.malformed, "bundle.json: base \(base) must be below the sequence \(sequence)")
        }
        let requiredSet = Set(required)
        for blob in required + blobs {
            guard Digest(blob.digest)?.algorithm == .sha256, blob.size >= 0 else {
                throw BundleError(.malformed, "bundle.json: invalid blob \(blob.digest) of \(blob.size) bytes")
            }
        }
        for blob in blobs where !requiredSet.contains(blob) {
            throw BundleError(.malformed, "bundle.json: carried blob \(blob.digest) is not needed by the state")
        }
        for image in images {
            guard RepositoryName(image.repository) != nil, Digest(image.digest) != nil,
                image.tag.isEmpty || Reference.isValidTag(image.tag), image.children.allSatisfy({ Digest($0) != nil })
            else { throw BundleError(.malformed, "bundle.json: invalid image \(image.reference)") }
        }
    }

    /// Now as RFC 3339 UTC.
    public static func timestamp(_ seconds: Int64 = Int64(time(nil))) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

/// Why a bundle was refused or could not be made: one line naming the cause.
public struct BundleError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Equatable, CustomStringConvertible {
        private let value: String
        public var description: String { value }

        /// The tar or its document is damaged, truncated or not a bundle.
        public static let malformed = Code(value: "malformed")
        /// The signature is missing or no configured key verifies it.
        public static let signature = Code(value: "signature")
        /// A blob does not hash to its digest, or is not the size announced.
        public static let corrupt = Code(value: "corrupt")
        /// The bundle does not apply here: wrong base, older than what is applied, missing content.
        public static let sequence = Code(value: "sequence")
        /// The state cannot fit under the quota.
        public static let quota = Code(value: "quota")
        /// The store or the output file failed.
        public static let storage = Code(value: "storage")
        /// The upstream failed while a bundle was made.
        public static let source = Code(value: "source")
        /// The trust policy or publish step refused an image.
        public static let refused = Code(value: "refused")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
