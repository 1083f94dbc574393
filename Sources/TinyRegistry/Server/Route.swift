import ContentStore
import OCICore
import NIOHTTP1

/// A request path of the registry, parsed and validated. Names and references have matched
/// the OCI grammar here, before anything touches the store.
public enum Route: Sendable, Equatable {
    case base
    case catalog
    case health
    case metrics
    case tags(RepositoryName)
    case manifest(RepositoryName, Reference)
    case blob(RepositoryName, Digest)
    case uploads(RepositoryName)
    case upload(RepositoryName, String)
    case referrers(RepositoryName, Digest)
    /// `/peer/v1/blobs/<digest>`: another satellite of the site asks for a blob by digest
    /// (RegistryAPI+Peers.swift).
    case peerBlob(Digest)
    /// `/peer/v1/manifests/<digest>`: a manifest by digest, for a peer (RegistryAPI+Peers.swift).
    case peerManifest(Digest)
    /// `/peer/v1/tags/<repository>/<tag>`: the digest of a tag the sync manages, for a peer.
    case peerTag(RepositoryName, String)
    /// `/peer/v1/claims/<digest>`: a peer about to fetch a blob from its upstream asks whether
    /// this satellite fetches it or decides to (RegistryAPI+Peers.swift).
    case peerClaim(Digest)

    /// Parses a request path (without query).
    ///
    /// Throws ``RegistryError`` with NAME_INVALID, DIGEST_INVALID or a 404 for paths that are
    /// not part of the API.
    public static let peerBlobPrefix = PeerProof.blobPathPrefix

    public static func parse(path: String, method: HTTPMethod = .GET) throws -> Route {
        switch path {
        case "/v2", "/v2/": return .base
        case "/v2/_catalog": return .catalog
        case "/healthz": return .health
        case "/metrics": return .metrics
        default: break
        }
        if path.hasPrefix(peerBlobPrefix) {
            let text = path.dropFirst(peerBlobPrefix.count)
            guard let digest = Digest(text) else {
                throw RegistryError(.digestInvalid, "invalid digest \"\(text.prefix(200))\"")
            }
            return .peerBlob(digest)
        }
        if path.hasPrefix(PeerProof.manifestPathPrefix) {
            let text = path.dropFirst(PeerProof.manifestPathPrefix.count)
            guard let digest = Digest(text) else {
                throw RegistryError(.digestInvalid, "invalid digest \"\(text.prefix(200))\"")
            }
            return .peerManifest(digest)
        }
        if path.hasPrefix(PeerProof.claimPathPrefix) {
            let text = path.dropFirst(PeerProof.claimPathPrefix.count)
            guard let digest = Digest(text) else {
                throw RegistryError(.digestInvalid, "invalid digest \"\(text.prefix(200))\"")
            }
            return .peerClaim(digest)
        }
        if path.hasPrefix(PeerProof.tagPathPrefix) {
            let text = String(path.dropFirst(PeerProof.tagPathPrefix.count))
            guard let slash = text.lastIndex(of: "/"), let name = RepositoryName(String(text[..<slash])) else {
                throw RegistryError(.nameInvalid, "invalid repository in \"\(text.prefix(300))\"")
            }
            let tag = String(text[text.index(after: slash)...])
            guard Reference.isValidTag(tag) else {
                throw RegistryError(.manifestUnknown, "no manifest under the invalid tag \"\(tag.prefix(200))\"")
            }
            return .peerTag(name, tag)
        }
        guard path.hasPrefix("/v2/") else {
            throw RegistryError(.notFound, "no such endpoint: \(path.prefix(200))")
        }
        var raw = path.dropFirst(4).split(separator: "/", omittingEmptySubsequences: false)
        // A trailing slash is only meaningful for ".../blobs/uploads/".
        if raw.last == "" { raw.removeLast() }
        var parts: [String] = []
        for component in raw {
            guard let decoded = PercentEncoding.decode(component), !decoded.contains("/") else {
                throw RegistryError(.nameInvalid, "invalid path component \"\(component.prefix(100))\"")
            }
            parts.append(decoded)
        }
        let n = parts.count
        func name(droppingLast count: Int) throws -> RepositoryName {
            let text = parts[0..<(n - count)].joined(separator: "/")
            guard n > count, let name = RepositoryName(text) else {
                throw RegistryError(.nameInvalid, "invalid repository name \"\(text.prefix(300))\"")
            }
            return name
        }
        func digest(_ text: String) throws -> Digest {
            guard let digest = Digest(text) else {
                throw RegistryError(.digestInvalid, "invalid digest \"\(text.prefix(200))\"")
            }
            return digest
        }
        if n >= 3, parts[n - 2] == "tags", parts[n - 1] == "list" {
            return .tags(try name(droppingLast: 2))
        }
        if n >= 3, parts[n - 2] == "blobs", parts[n - 1] == "uploads" {
            return .uploads(try name(droppingLast: 2))
        }
        if n >= 4, parts[n - 3] == "blobs", parts[n - 2] == "uploads" {
            return .upload(try name(droppingLast: 3), parts[n - 1])
        }
        if n >= 3, parts[n - 2] == "manifests" {
            let text = parts[n - 1]
            guard let reference = Reference(text) else {
                if Digest.looksLikeDigest(text) {
                    throw RegistryError(.digestInvalid, "invalid digest \"\(text.prefix(200))\"")
                }
                // Nothing can be stored under an invalid tag: reading it finds nothing; writing
                // it is a bad request.
                if method == .PUT {
                    throw RegistryError(.manifestInvalid, "invalid tag \"\(text.prefix(200))\"")
                }
                throw RegistryError(.manifestUnknown, "no manifest under the invalid reference \"\(text.prefix(200))\"")
            }
            return .manifest(try name(droppingLast: 2), reference)
        }
        if n >= 3, parts[n - 2] == "blobs" {
            return .blob(try name(droppingLast: 2), try digest(parts[n - 1]))
        }
        if n >= 3, parts[n - 2] == "referrers" {
            return .referrers(try name(droppingLast: 2), try digest(parts[n - 1]))
        }
        throw RegistryError(.notFound, "no such endpoint: \(path.prefix(200))")
    }
}
