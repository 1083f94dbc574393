import ContentStore
import Logging
import NIOPosix
import OCICore
import Synchronization

/// HTTP to the peer endpoint of other satellites (`/peer/v1/blobs/<digest>`, served by
/// TinyRegistry's RegistryAPI+Peers) over libcurl, every request with a fresh proof of the
/// site secret. Short connect timeouts: a peer that is down costs one of them.
final class PeerClient: Sendable {
    /// What a peer says about a blob.
    enum Holding: Sendable, Equatable {
        /// Verified in its store.
        case complete
        /// Being fetched from its own source; this many bytes are on its disk.
        case fetching(Int64)
        /// It waits for, or follows, another peer.
        case following
        case absent
    }

    struct Probe: Sendable {
        var url: String
        var holding: Holding
        /// Whether the peer runs a sync pass now (it may need the blob too).
        var syncing: Bool
        /// How long the answer took (ns): the race between peers that hold the blob.
        var elapsed: Int64
        /// The blob's size, from a peer that holds it verified (its `Content-Length`).
        var size: Int64? = nil
    }

    /// The peer fetched less than it should or lied: how a GET ended.
    enum Failure: Error, Sendable {
        /// No answer (connect, timeout): the peer is down.
        case down(String)
        /// Answered, but not with the blob (404, 401, a cut).
        case unavailable(String)
        /// Sent more bytes than the blob has: a liar.
        case lie(String)
    }

    let proof: PeerProof
    let connectTimeout: Int64
    let stallTimeout: Int64
    let bufferSize: Int
    private let pool: NIOThreadPool
    private let received = Atomic<Int64>(0)
    /// The process's WAN/LAN accounting: peer bytes are LAN bytes.
    let accounting: LinkAccounting?

    /// The PEM bundle that verifies `https://` peers (`peers.caFile`); nil: the system's CAs.
    let caFile: String?
    /// Reports peers refused for their TLS (``PeerClient/TLSReport``); nil: not reported.
    let tlsReport: TLSReport?

    init(
        proof: PeerProof, connectTimeout: Int64, stallTimeout: Int64, bufferSize: Int, threads: Int, accounting: LinkAccounting?,
        caFile: String? = nil, logger: Logger? = nil
    ) {
        self.proof = proof
        self.caFile = caFile
        tlsReport = logger.map { TLSReport(logger: $0, caFile: caFile) }
        self.accounting = accounting
        self.connectTimeout = connectTimeout
        self.stallTimeout = stallTimeout
        self.bufferSize = bufferSize
        pool = NIOThreadPool(numberOfThreads: max(2, threads))
        pool.start()
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    /// Body bytes received from peers (LAN bytes).
    var bytesReceived: Int64 { received.load(ordering: .relaxed) }

    /// Runs a transfer to the peer at `url` off the cooperative pool; a TLS failure (an
    /// untrusted certificate, a plain-HTTP peer named https://) is reported before it is
    /// rethrown, since the callers only see "no answer".
    func blocking<T: Sendable>(_ url: String, _ body: @escaping @Sendable (CancelFlag) throws -> T) async throws -> T {
        do {
            return try await pool.blockingTransfer(body)
        } catch let failure as CurlTransfer.Failure {
            tlsReport?.failed(url, failure)
            throw failure
        }
    }

    func options(method: String, path: String) -> CurlTransfer.Options {
        var options = CurlTransfer.Options()
        options.method = method
        options.connectTimeout = connectTimeout
        options.stallTimeout = stallTimeout
        options.bufferSize = bufferSize
        options.followRedirects = false
        // https:// peers: their certificate must chain to the site's CA and name the host
        // of the URL (an IP address in its subjectAltName; Curl.swift checks that under the
        // static build's mbedTLS). There is no way to turn verification off for peers.
        options.caFile = caFile
        options.insecure = false
        options.headers.append("Authorization: \(proof.authorization(method: method, path: path))")
        return options
    }

    /// Asks one peer about `digest` (HEAD). Nil when the peer does not answer.
    func probe(_ url: String, digest: Digest) async -> Probe? {
        let path = "\(PeerProof.blobPathPrefix)\(digest)"
        let started = MonotonicClock.now()
        var options = options(method: "HEAD", path: path)
        options.stallTimeout = min(stallTimeout, 3_000_000_000)
        let finalOptions = options
        let response = try? await blocking(url) { cancel in
            try CurlTransfer.perform(url: url + path, options: finalOptions, cancelled: cancel, onBody: { _ in })
        }
        guard let response else { return nil }
        let syncing = response.header("satellite-syncing") == "1"
        let state = response.header("satellite-blob-state")
        let holding: Holding
        switch (response.status, state) {
        case (200, "complete"): holding = .complete
        case (200, "fetching"): holding = .fetching(response.header("satellite-blob-offset").flatMap { Int64($0) } ?? 0)
        case (404, "following"): holding = .following
        case (404, _): holding = .absent
        default: return nil  // 401 (another site's secret) or garbage: not a peer of ours
        }
        var probe = Probe(url: url, holding: holding, syncing: syncing, elapsed: MonotonicClock.now() - started)
        if holding == .complete { probe.size = response.header("content-length").flatMap { Int64($0) }.flatMap { $0 >= 0 ? $0 : nil } }
        return probe
    }

    /// Streams `digest` from a peer into `ingest` from its offset, following a download in
    /// progress until it completes or the peer cuts. Returns the bytes written.
    ///
    /// Throws ``Failure``, or ``SyncError`` (storage, cancelled).
    func fetch(
        _ url: String, digest: Digest, size: Int64, into ingest: Ingest, progress: @escaping @Sendable (Int64) -> Void
    ) async throws -> Int64 {
        let path = "\(PeerProof.blobPathPrefix)\(digest)"
        var options = options(method: "GET", path: path)
        let start = ingest.offset
        if start > 0 { options.headers.append("Range: bytes=\(start)-") }
        let finalOptions = options
        let target = "\(url)\(path)?size=\(size)"
        return try await blocking(url) { cancel in
            var refusal: Failure?
            let response: CurlTransfer.Response
            do {
                response = try CurlTransfer.perform(
                    url: target, options: finalOptions, cancelled: cancel,
                    onHeaders: { response in
                        switch response.status {
                        case 206:
                            guard let range = response.header("content-range"), ContentRange(range)?.start == start else {
                                refusal = .unavailable("\(url) answered a range at the wrong offset")
                                return .reject
                            }
                            return .accept
                        case 200 where start == 0:
                            return .accept
                        default:
                            refusal = .unavailable("\(url) answered HTTP \(response.status) for \(digest)")
                            return .reject
                        }
                    },
                    onBody: { bytes in
                        guard ingest.offset + Int64(bytes.count) <= size else {
                            throw Failure.lie("\(url) sent more than the \(size) bytes of \(digest)")
                        }
                        do {
                            try ingest.write(bytes)
                        } catch {
                            throw SyncError(.storage, "cannot write \(digest): \(error)")
                        }
                        self.received.wrappingAdd(Int64(bytes.count), ordering: .relaxed)
                        self.accounting?.addLAN(Int64(bytes.count))
                        progress(ingest.offset)
                    })
            } catch let failure as Failure {
                throw failure
            } catch let error as SyncError {
                throw error
            } catch is CancellationError {
                throw SyncError(.cancelled, "cancelled")
            } catch let failure as CurlTransfer.Failure {
                if ingest.offset == start {
                    throw Failure.down("\(failure)")
                }
                throw Failure.unavailable("\(failure)")
            }
            if let refusal { throw refusal }
            _ = response
            return ingest.offset - start
        }
    }
}

extension PeerClient {
    /// A small document from a peer (a manifest, a tag's digest), whole in memory, at most
    /// `limit` bytes. Nil when the peer does not answer, answers anything but 200 or sends
    /// more than `limit`.
    func document(_ url: String, path: String, limit: Int) async -> (response: CurlTransfer.Response, body: [UInt8])? {
        let finalOptions = options(method: "GET", path: path)
        let answer = try? await blocking(url) { cancel -> (CurlTransfer.Response, [UInt8])? in
            var body: [UInt8] = []
            var tooLong = false
            let response = try CurlTransfer.perform(
                url: url + path, options: finalOptions, cancelled: cancel,
                onHeaders: { $0.status == 200 ? .accept : .reject },
                onBody: { bytes in
                    guard body.count + bytes.count <= limit else {
                        tooLong = true
                        throw Failure.lie("\(url) sent more than \(limit) bytes for \(path)")
                    }
                    body.append(contentsOf: bytes)
                })
            guard response.status == 200, !tooLong else { return nil }
            return (response, body)
        }
        guard let (response, body) = answer else { return nil }
        received.wrappingAdd(Int64(body.count), ordering: .relaxed)
        accounting?.addLAN(Int64(body.count))
        return (response, body)
    }

    /// The manifest `digest` from a peer, verified against the digest. Nil when the peer has
    /// none; throws ``Failure/lie(_:)`` when its bytes do not hash to `digest` or are no manifest.
    func manifest(_ url: String, digest: Digest) async throws -> ImagePublisher.ManifestContent? {
        guard let (response, bytes) = await document(url, path: "\(PeerProof.manifestPathPrefix)\(digest)", limit: Manifest.maxSize)
        else { return nil }
        guard ContentHasher.digest(of: bytes, algorithm: digest.algorithm) == digest else {
            throw Failure.lie("\(url) sent a manifest that does not match \(digest)")
        }
        guard let manifest = try? Manifest.parse(bytes) else {
            throw Failure.lie("\(url) sent no valid manifest for \(digest)")
        }
        let contentType = response.header("content-type").map { String($0.split(separator: ";").first ?? "").trimmed(leading: false) }
        return ImagePublisher.ManifestContent(
            digest: digest, mediaType: manifest.effectiveMediaType(contentType: contentType), bytes: bytes, manifest: manifest)
    }

    /// The digest a peer's sync holds for `repository:tag`; nil when it holds none.
    func tagDigest(_ url: String, repository: RepositoryName, tag: String) async -> Digest? {
        guard let (response, _) = await document(url, path: "\(PeerProof.tagPathPrefix)\(repository)/\(tag)", limit: 4096) else {
            return nil
        }
        return response.header("docker-content-digest").flatMap { Digest($0) }
    }
}
