import Fleet
import JSONCoding
import ContentStore
import OCICore

/// What the gateway must hold: a list of images, from the config, a file, or Harbor
/// Satellite state artifacts in the upstream registry.
public enum DesiredStateSource: Sendable, Equatable {
    case images([ImageReference])
    /// A JSON file: `["repo:tag", …]` or `{"images": [...]}`.
    case file(String)
    /// `satellite/satellite-state/<name>/state:latest` in the upstream.
    case artifact(ImageReference)
}

/// What a state artifact said, beyond its images: which artifact digest was read and which
/// config it names (the fleet link reports and applies them).
public struct ResolvedArtifact: Sendable, Equatable {
    /// Manifest digest of the satellite-state artifact read in this pass.
    public var stateDigest: String
    /// The config-state reference it names (empty: none).
    public var configReference: String

    public init(stateDigest: String, configReference: String) {
        self.stateDigest = stateDigest
        self.configReference = configReference
    }
}

extension DesiredStateSource {
    /// Reads the desired images. Artifacts are fetched from `content`.
    ///
    /// Throws ``SyncError`` when the source cannot be read or is malformed.
    func resolve(content: (any ContentSource)?) async throws -> [ImageReference] {
        try await resolveWithArtifact(content: content).images
    }

    func resolveWithArtifact(content: (any ContentSource)?) async throws -> (images: [ImageReference], artifact: ResolvedArtifact?) {
        switch self {
        case .images(let images):
            return (images, nil)
        case .file(let path):
            let bytes: [UInt8]
            do {
                bytes = try PosixFile.readAll(path: path, limit: 4 << 20)
            } catch {
                throw SyncError(.storage, "cannot read state file \(path): \(error)")
            }
            return (try Self.parseImageList(bytes, source: path), nil)
        case .artifact(let reference):
            guard let content else { throw SyncError(.refused, "a state artifact needs an upstream") }
            return try await Self.resolveArtifact(reference, client: content)
        }
    }

    static func parseImageList(_ bytes: [UInt8], source: String) throws -> [ImageReference] {
        struct Wrapped: Decodable { var images: [String] }
        let texts: [String]
        if let list = try? JSONCoder.decode([String].self, from: bytes) {
            texts = list
        } else if let wrapped = try? JSONCoder.decode(Wrapped.self, from: bytes) {
            texts = wrapped.images
        } else {
            throw SyncError(.corrupt, "\(source) is not a JSON list of images like [\"library/nginx:1.27\"]")
        }
        return try texts.map { text in
            guard let reference = ImageReference(text) else {
                throw SyncError(.corrupt, "\(source): \"\(text)\" is not repository:tag or repository@digest")
            }
            return reference
        }
    }

    /// Reads a satellite state artifact and every group state it names, or one group state
    /// artifact itself (`satellite/group-state/<group>/state:latest`: what a whole Ground
    /// Control group must hold, e.g. for `bundle create`). An image wanted by two groups
    /// stays while either wants it; `deleted` entries drop out; a digest pins.
    static func resolveArtifact(_ reference: ImageReference, client: any ContentSource) async throws
        -> (images: [ImageReference], artifact: ResolvedArtifact)
    {
        let (stateDigest, root) = try await readStateDocument(reference, client: client)
        var groups: [(reference: ImageReference, state: GroupState)] = []
        let configReference: String
        // Both documents decode leniently (Go's omitempty: a satellite in no group is `{}`),
        // so a group state is recognised by what it names: a group or artifacts, and no
        // states or config.
        let satellite = try? JSONCoder.decode(SatelliteState.self, from: root)
        let groupState = try? JSONCoder.decode(GroupState.self, from: root)
        if let group = groupState, satellite.map({ $0.states.isEmpty && $0.config.isEmpty }) ?? true,
            !group.group.isEmpty || !group.artifacts.isEmpty
        {
            configReference = ""
            groups.append((reference, group))
        } else if let satellite {
            configReference = satellite.config
            for stateText in satellite.states {
                let trimmed = Self.stripRegistryHost(stateText)
                guard let groupReference = ImageReference(trimmed) else {
                    throw SyncError(.corrupt, "state artifact \(reference) names an invalid group state \"\(stateText)\"")
                }
                let (_, bytes) = try await readStateDocument(groupReference, client: client)
                guard let group = try? JSONCoder.decode(GroupState.self, from: bytes) else {
                    throw SyncError(.corrupt, "group state \(groupReference) does not hold {\"artifacts\": [...]}")
                }
                groups.append((groupReference, group))
            }
        } else {
            throw SyncError(
                .corrupt, "state artifact \(reference) holds neither a satellite state {\"states\": [...]} nor a group state {\"artifacts\": [...]}")
        }
        var wanted: [ImageReference] = []
        var seen = Set<String>()
        for (groupReference, group) in groups {
            for artifact in group.artifacts where artifact.isWantedImage {
                guard let repository = RepositoryName(Self.stripRegistryHost(artifact.repository)) else {
                    throw SyncError(.corrupt, "group state \(groupReference): invalid repository \"\(artifact.repository)\"")
                }
                let digest = artifact.digest.isEmpty ? nil : Digest(artifact.digest)
                let tags = artifact.tag.filter { Reference.isValidTag($0) }
                let entries: [ImageReference] =
                    tags.isEmpty
                    ? [ImageReference(repository: repository, tag: digest == nil ? "latest" : nil, digest: digest)]
                    : tags.map { ImageReference(repository: repository, tag: $0, digest: digest) }
                for entry in entries where seen.insert(entry.description).inserted {
                    wanted.append(entry)
                }
            }
        }
        return (wanted, ResolvedArtifact(stateDigest: stateDigest.description, configReference: configReference))
    }

    /// Harbor writes repositories with the registry host ("harbor.example.com/proj/app");
    /// the store keeps only the path.
    public static func stripRegistryHost(_ text: String) -> String {
        var text = text
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text = String(text.dropFirst(scheme.count)) }
        if let slash = text.firstIndex(of: "/") {
            let host = text[..<slash]
            if host.contains(".") || host.contains(":") || host == "localhost" {
                return String(text[text.index(after: slash)...])
            }
        }
        return text
    }

    /// The JSON document inside a state artifact: the first `.json` file of its single
    /// tar.gz layer (or the config blob, for artifacts that carry it there).
    /// Returns the artifact's manifest digest with the document.
    public static func readStateDocument(_ reference: ImageReference, client: any ContentSource) async throws
        -> (digest: Digest, document: [UInt8])
    {
        let resolved = try await client.manifest(
            reference.repository, reference: reference.digest.map { .digest($0) } ?? .tag(reference.tag ?? "latest"))
        guard let layer = resolved.manifest.layers?.first, let digest = Digest(layer.digest) else {
            throw SyncError(.corrupt, "state artifact \(reference) has no layer")
        }
        let body: [UInt8]
        do {
            body = try await client.smallBlob(reference.repository, digest: digest, limit: 16 << 20)
        } catch let error as SyncError {
            throw SyncError(error.kind, "state artifact \(reference): layer \(digest): \(error)")
        }
        guard ContentHasher.digest(of: body, algorithm: digest.algorithm) == digest else {
            throw SyncError(.corrupt, "state artifact \(reference): layer does not match its digest")
        }
        if body.first == UInt8(ascii: "{") { return (resolved.digest, body) }
        do {
            let tar = body.starts(with: [0x1f, 0x8b]) ? try Archive.gunzip(body, limit: 16 << 20) : body
            for file in try Archive.untar(tar) where file.name.hasSuffix(".json") {
                return (resolved.digest, file.content)
            }
        } catch let error as Archive.Error {
            throw SyncError(.corrupt, "state artifact \(reference): \(error)")
        }
        throw SyncError(.corrupt, "state artifact \(reference): no .json file in its layer")
    }
}
