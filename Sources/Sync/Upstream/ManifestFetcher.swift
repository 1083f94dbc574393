import ContentStore
import OCICore

/// Fetches a manifest or index from the upstream and checks it against its digest: the
/// bytes are kept exactly as served, so the digest a runtime sees is the upstream's.
struct ManifestFetcher {
    let client: UpstreamClient

    typealias Fetched = ImagePublisher.ManifestContent

    /// The digest the upstream announces for a tag (HEAD: a few hundred bytes instead of the
    /// manifest), or nil when it does not say.
    func headDigest(_ repository: RepositoryName, tag: String) async throws -> Digest? {
        let response = try await client.fetch(
            "/v2/\(repository)/manifests/\(tag)", scope: "repository:\(repository):pull", accept: MediaType.manifestTypes,
            method: "HEAD")
        guard response.status == 200 else { return nil }
        return response.digestHeader.flatMap { Digest($0) }
    }

    /// Throws ``SyncError``: notFound, corrupt (digest mismatch, not a manifest), link, refused.
    func fetch(_ repository: RepositoryName, reference: Reference) async throws -> Fetched {
        let response = try await client.fetch(
            "/v2/\(repository)/manifests/\(reference)", scope: "repository:\(repository):pull",
            accept: MediaType.manifestTypes)
        switch response.status {
        case 200:
            break
        case 404:
            throw SyncError(.notFound, "upstream has no manifest \(repository):\(reference)")
        case 408, 429, 500...599:
            throw SyncError(.link, "upstream answered HTTP \(response.status) for \(repository):\(reference)")
        default:
            throw SyncError(.refused, "upstream answered HTTP \(response.status) for \(repository):\(reference)")
        }
        let digest: Digest
        switch reference {
        case .digest(let expected):
            guard ContentHasher.digest(of: response.body, algorithm: expected.algorithm) == expected else {
                throw SyncError(.corrupt, "manifest \(repository)@\(expected) from upstream does not match its digest")
            }
            digest = expected
        case .tag:
            if let header = response.digestHeader, let announced = Digest(header) {
                guard ContentHasher.digest(of: response.body, algorithm: announced.algorithm) == announced else {
                    throw SyncError(.corrupt, "manifest \(repository):\(reference) does not match the digest \(announced) the upstream announced")
                }
                digest = announced
            } else {
                digest = ContentHasher.digest(of: response.body)
            }
        }
        let manifest: Manifest
        do {
            manifest = try Manifest.parse(response.body)
        } catch {
            throw SyncError(.corrupt, "upstream manifest \(repository):\(reference) is invalid: \(error)")
        }
        let contentType = response.contentType.map { String($0.split(separator: ";")[0]).trimmed(leading: false) }
        return Fetched(
            digest: digest, mediaType: manifest.effectiveMediaType(contentType: contentType), bytes: response.body,
            manifest: manifest)
    }
}
