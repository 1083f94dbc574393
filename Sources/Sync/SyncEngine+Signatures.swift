import ContentStore
import OCICore

extension SyncEngine {
    /// The sigstore bundle's media type (artifactType of a cosign 2.4+/3 signature referrer).
    static let bundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
    /// A signature document (payload, bundle, config) larger than this is not cosign's.
    static let maxSignatureBlob: Int64 = 1 << 20

    /// Copies the cosign signatures of manifest `digest` from the source into the store,
    /// before the image is published, so the trust policy at the publish step finds them and
    /// clients on the LAN can verify against the satellite: the legacy `sha256-<hex>.sig`
    /// tag, and OCI 1.1 referrers whose artifactType is a sigstore bundle. A source without
    /// signatures is not an error here: the policy decides what an unsigned image means.
    ///
    /// Throws ``SyncError`` when the link fails past the pass deadline or the store fails.
    func syncSignatures(of digest: Digest, repository: RepositoryName, deadline: Int64) async throws {
        var artifacts: [(content: ImagePublisher.ManifestContent, tags: [String])] = []
        if digest.algorithm == .sha256 {
            let tag = "sha256-\(digest.hex).sig"
            do {
                let signature = try await fetchWithRetry(deadline: deadline) {
                    try await content.manifest(repository, reference: .tag(tag))
                }
                artifacts.append((signature, [tag]))
            } catch let error as SyncError where error.kind == .notFound {
                // Not signed in the legacy format.
            }
        }
        let index = try await fetchWithRetry(deadline: deadline) { try await content.referrers(repository, of: digest) }
        if let index, let parsed = try? Manifest.parse(index) {
            for descriptor in parsed.manifests ?? [] where descriptor.artifactType == Self.bundleArtifactType {
                guard let referrer = Digest(descriptor.digest) else { continue }
                let manifest = try await fetchWithRetry(deadline: deadline) {
                    try await content.manifest(repository, reference: .digest(referrer))
                }
                artifacts.append((manifest, []))
            }
        }
        for artifact in artifacts where !artifact.content.manifest.isIndex {
            let descriptors = [artifact.content.manifest.config].compactMap { $0 } + (artifact.content.manifest.layers ?? [])
            var blobs: [(Digest, Int64)] = []
            for descriptor in descriptors {
                guard let blob = Digest(descriptor.digest), descriptor.size >= 0, descriptor.size <= Self.maxSignatureBlob else {
                    throw SyncError(
                        .corrupt, "\(repository)@\(artifact.content.digest): a signature blob is invalid or over \(Self.maxSignatureBlob) bytes")
                }
                blobs.append((blob, descriptor.size))
            }
            try await download(blobs.filter { !store.hasBlob($0.0) }, repository: repository, deadline: deadline)
            do {
                try publisher.publish(
                    ImagePublisher.Image(
                        repository: repository, tags: artifact.tags, top: artifact.content, blobs: blobs.map(\.0), origin: .signature))
            } catch {
                throw SyncError(.storage, "\(repository): cannot store the signature \(artifact.content.digest): \(error)")
            }
        }
    }
}
