import ContentStore
import OCICore
import NIOCore
import NIOHTTP1

/// The peer endpoint: `GET|HEAD /peer/v1/blobs/<digest>[?size=N]`, for the other satellites of
/// the site (docs/sync.md, "Peers"). Only requests that prove the site secret
/// (``PeerProof``: an HMAC over the request, never the secret itself) get an answer other
/// than 401; whatever the repository, a peer gets:
///
/// - a verified blob of the store: 200/206 with `Satellite-Blob-State: complete`;
/// - a blob this store is downloading from its own source right now:
///   `Satellite-Blob-State: fetching` and `Satellite-Blob-Offset: <bytes on disk>`; a GET
///   (which must name the blob's `size`) streams the bytes already on disk and follows the
///   file as it grows, and is cut if the download fails or stops (the peer verifies the
///   whole blob by digest, so a cut costs time, never integrity);
/// - a blob this store waits for or follows from another peer:
///   `Satellite-Blob-State: following` (404): following it could make two peers wait on
///   each other;
/// - else 404 BLOB_UNKNOWN.
///
/// `POST /peer/v1/claims/<digest>` is how satellites agree on the one that fetches a blob
/// from the WAN (``peerClaim(_:_:)``).
extension RegistryAPI {
    static let peerPollInterval: Int64 = 50_000_000

    /// Throws 401 unless the request proves the site secret.
    func requirePeerProof(_ request: Request) throws {
        guard let proof = peerProof else {
            throw RegistryError(.unauthorized, "this satellite serves no peers (no peers.secretFile)")
        }
        guard let authorization = request.headers.first(name: "authorization"),
            proof.verify(authorization: authorization, method: "\(request.method)", path: request.path)
        else {
            throw RegistryError(.unauthorized, "peer requests must prove the site secret (SatellitePeer authorization)")
        }
    }

    /// `GET|HEAD /peer/v1/manifests/<digest>`: a manifest or index this store holds, whatever
    /// the repository, re-hashed before it is served (a peer checks the digest again).
    func peerManifest(_ request: Request, _ digest: Digest) throws -> Response {
        try requirePeerProof(request)
        guard store.hasBlob(digest), let bytes = try? store.readBlob(digest, limit: Manifest.maxSize),
            ContentHasher.digest(of: bytes, algorithm: digest.algorithm) == digest,
            let manifest = try? Manifest.parse(bytes)
        else {
            throw RegistryError(.manifestUnknown, "this satellite holds no manifest \(digest)")
        }
        var response = Response.json(bytes, contentType: manifest.effectiveMediaType(contentType: nil))
        response.headers.add(name: "Docker-Content-Digest", value: digest.description)
        if request.method == .HEAD {
            response.headers.add(name: "Content-Length", value: String(bytes.count))
            response.body = .none
            return response
        }
        metrics.recordPeerServed(Int64(bytes.count))
        return response
    }

    /// `GET|HEAD /peer/v1/tags/<repository>/<tag>`: the digest this store has for a tag its
    /// sync manages (desired state, `ManagedTags`) and holds: `Docker-Content-Digest` and
    /// `{"digest": "..."}`. Tags pushed by clients or cached by the proxy are not a peer's to
    /// take as the site's desired state: 404.
    func peerTag(_ request: Request, _ repository: RepositoryName, _ tag: String) throws -> Response {
        try requirePeerProof(request)
        let managed = ManagedTags.read(store: store)
        guard let recorded = managed.tags["\(repository):\(tag)"], let digest = Digest(recorded),
            store.resolveTag(repository, tag) == digest, store.hasBlob(digest)
        else {
            throw RegistryError(.manifestUnknown, "this satellite's sync holds no \(repository):\(tag)")
        }
        let body = Array(#"{"digest":"\#(digest)"}"#.utf8)
        var response = Response.json(body)
        response.headers.add(name: "Docker-Content-Digest", value: digest.description)
        if request.method == .HEAD {
            response.headers.add(name: "Content-Length", value: String(body.count))
            response.body = .none
        }
        return response
    }

    /// `POST /peer/v1/claims/<digest>` with `Satellite-Peer: <the asker's registry URL>`: a
    /// peer about to fetch the blob from its upstream asks whether this satellite holds it,
    /// fetches it or decides to (BlobStore's claims): `{"claim":"none|deciding|holding"}`,
    /// also in `Satellite-Claim`.
    func peerClaim(_ request: Request, _ digest: Digest) throws -> Response {
        try requirePeerProof(request)
        guard let asker = request.headers.first(name: "satellite-peer"), Self.isPeerURL(asker) else {
            throw RegistryError(
                .unsupported, "a claim names the asking satellite's registry URL (Satellite-Peer: http[s]://host:port)", status: .badRequest)
        }
        let answer = store.answerClaim(digest, from: asker)
        var response = Response.json(Array(#"{"claim":"\#(answer.rawValue)"}"#.utf8))
        response.headers.add(name: "Satellite-Claim", value: answer.rawValue)
        return response
    }

    /// A peer's URL as it names itself: http(s), printable ASCII without spaces, short.
    static func isPeerURL(_ text: String) -> Bool {
        (text.hasPrefix("http://") || text.hasPrefix("https://")) && text.utf8.count <= 512
            && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    func peerBlob(_ request: Request, _ digest: Digest) throws -> Response {
        try requirePeerProof(request)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Docker-Content-Digest", value: digest.description)
        headers.add(name: "Accept-Ranges", value: "bytes")
        let syncing = store.writerBusy ? "1" : "0"
        headers.add(name: "Satellite-Syncing", value: syncing)
        if store.hasBlob(digest), let (fd, size) = try? store.openBlob(digest) {
            headers.add(name: "Satellite-Blob-State", value: "complete")
            let (response, length) = try Self.storedBlob(request, fd: fd, size: size, headers: headers)
            if length > 0 { metrics.recordPeerServed(length) }
            return response
        }
        switch store.downloadActivity(digest) {
        case .none:
            throw RegistryError(
                .blobUnknown, "this satellite neither holds nor downloads \(digest)", headers: [("Satellite-Syncing", syncing)])
        case .following(let written):
            throw RegistryError(
                .blobUnknown, "this satellite waits for \(digest) from another peer",
                headers: [
                    ("Satellite-Blob-State", "following"), ("Satellite-Blob-Offset", String(written)), ("Satellite-Syncing", syncing),
                ])
        case .fetching(let written):
            headers.add(name: "Satellite-Blob-State", value: "fetching")
            headers.add(name: "Satellite-Blob-Offset", value: String(written))
            if request.method == .HEAD { return Response(status: .ok, headers: headers) }
            guard let text = request.query["size"], let size = Int64(text), size > 0 else {
                throw RegistryError(.sizeInvalid, "a peer following a download names the blob's size (?size=N)")
            }
            let blob = GrowingBlob(digest: digest, size: size, store: store)
            let (status, offset, length) = try Self.range(request, size: size, headers: &headers)
            blob.addReader()
            Self.follow(blob, store: store)
            metrics.recordPeerServed(length)
            return Response(status: status, headers: headers, body: .growing(blob, offset: offset, length: length))
        }
    }

    /// Drives `blob` from the download file another writer (this process or another) fills:
    /// advances with the file, finishes once the blob is stored, fails when the writer let go
    /// without storing it. Stops when no reader is left.
    static func follow(_ blob: GrowingBlob, store: BlobStore) {
        Task.detached {
            var lastSize: Int64 = -1
            while blob.readerCount > 0 {
                if store.hasBlob(blob.digest) {
                    blob.finish()
                    return
                }
                switch store.downloadActivity(blob.digest) {
                case .fetching(let written), .following(let written):
                    if written != lastSize {
                        lastSize = written
                        if written > blob.size {
                            blob.fail("the download of \(blob.digest) is longer than \(blob.size) bytes")
                            return
                        }
                        blob.advance(to: written)
                    }
                case .none:
                    // Committed between the two checks, or the writer stopped.
                    if store.hasBlob(blob.digest) {
                        blob.finish()
                    } else {
                        blob.fail("the download of \(blob.digest) stopped")
                    }
                    return
                }
                try? await Task.sleep(nanoseconds: UInt64(peerPollInterval))
            }
        }
    }
}
