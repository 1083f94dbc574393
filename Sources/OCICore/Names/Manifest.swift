import JSONCoding

/// A content descriptor as it appears in manifests and indexes.
public struct Descriptor: Codable, Sendable, Equatable {
    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    public var platform: Platform?
    public var artifactType: String?

    public init(mediaType: String, digest: String, size: Int64, annotations: [String: String]? = nil, artifactType: String? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.artifactType = artifactType
    }

    public struct Platform: Codable, Sendable, Equatable {
        public var architecture: String
        public var os: String
        public var variant: String?
        public var osVersion: String?
        public var osFeatures: [String]?

        enum CodingKeys: String, CodingKey {
            case architecture, os, variant
            case osVersion = "os.version"
            case osFeatures = "os.features"
        }
    }
}

/// The fields of an image manifest or index that the registry and sync need: what it
/// references and what it is about. Unknown fields are ignored; the stored bytes are always
/// the client's or the upstream's, never re-encoded.
public struct Manifest: Decodable, Sendable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor?
    public var layers: [Descriptor]?
    public var manifests: [Descriptor]?
    public var subject: Descriptor?
    public var annotations: [String: String]?

    /// Largest manifest accepted (the spec's suggested limit).
    public static let maxSize = 4 << 20

    public enum ParseError: Error, CustomStringConvertible {
        case invalid(String)

        public var description: String {
            switch self {
            case .invalid(let reason): reason
            }
        }
    }

    /// Parses and checks a manifest document.
    ///
    /// Throws ``ParseError`` with the reason when it is not JSON, not an object, has a wrong
    /// schema version or descriptors with malformed digests.
    public static func parse(_ bytes: [UInt8]) throws -> Manifest {
        let manifest: Manifest
        do {
            manifest = try JSONCoder.decode(Manifest.self, from: bytes)
        } catch {
            throw ParseError.invalid("manifest is not valid JSON of the expected shape")
        }
        if let version = manifest.schemaVersion, version != 2 {
            throw ParseError.invalid("schemaVersion \(version) is not supported (only 2)")
        }
        for descriptor in manifest.references + [manifest.subject].compactMap({ $0 }) {
            guard Digest(descriptor.digest) != nil else {
                throw ParseError.invalid("descriptor digest \"\(descriptor.digest)\" is not a valid digest")
            }
            guard descriptor.size >= 0 else {
                throw ParseError.invalid("descriptor \(descriptor.digest) has a negative size")
            }
        }
        return manifest
    }

    /// The media type: the document's own, else what the client said, else guessed from shape.
    public func effectiveMediaType(contentType: String?) -> String {
        if let mediaType, !mediaType.isEmpty { return mediaType }
        if let contentType, !contentType.isEmpty, contentType != "application/json" { return contentType }
        return manifests != nil ? MediaType.ociIndex : MediaType.ociManifest
    }

    public var isIndex: Bool { manifests != nil && config == nil }

    /// Every descriptor this manifest points at (config, layers, child manifests).
    public var references: [Descriptor] {
        [config].compactMap { $0 } + (layers ?? []) + (manifests ?? [])
    }

    /// The descriptor of this manifest as a referrer, for the referrers API.
    public func referrerDescriptor(digest: Digest, size: Int64, mediaType: String) -> Descriptor {
        var artifact = artifactType
        if artifact == nil, !isIndex { artifact = config?.mediaType }
        return Descriptor(mediaType: mediaType, digest: digest.description, size: size, annotations: annotations, artifactType: artifact)
    }
}
