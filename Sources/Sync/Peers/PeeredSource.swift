import ContentStore
import Logging
import OCICore

/// A ``ContentSource`` that asks the site's peers for a blob before the WAN and coordinates
/// with them so that the site fetches each blob from the WAN once (docs/sync.md, "Peers").
/// Manifests come from the upstream while the WAN gate is open; when it is closed
/// (outside `sync.windows`, budget spent) or the upstream fails with a link error, from the
/// peers: a tag resolves to the digest the peers' syncs hold for it, a manifest by digest
/// from any peer that holds it, checked against the digest (``manifest(_:reference:)``).
/// Small documents (state artifacts) and referrers come from the upstream only.
///
/// For each blob, inside one ``fetchBlob(_:size:repository:into:progress:)`` and so inside
/// the ``BlobTransfer`` that owns the ingest (which stays unchanged):
/// 1. Probe the live peers in parallel (HEAD, short connect timeout; a peer that does not
///    answer is down for a while).
/// 2. A peer that holds the blob verified: fetch from the fastest to answer (the race).
/// 3. Else a peer fetching it from its own source: follow its growing file (the highest
///    ranked one).
/// 4. Else rendezvous hashing over this satellite and the peers that run a sync now picks the
///    fetcher: rank 0 fetches from the upstream at once; rank r waits up to r × `takeover`
///    for a higher-ranked one to start (probing again every `pollInterval`), then takes
///    over itself.
/// 5. Before its first byte from the upstream, a satellite claims the blob (``claim(_:excluding:)``,
///    BlobStore's claims): of the satellites deciding at once, one wins; the others follow it.
/// Whatever the source, bytes land in the same ingest at its offset: a peer that dies or
/// cuts mid-blob costs a re-probe, and the next peer or the upstream continues at the same
/// offset. When all the bytes are there, they are hashed before this returns: bytes that do
/// not match the digest make every peer that contributed to them a liar for this blob, the
/// ingest starts over, and the blob is fetched elsewhere; a peer never makes a blob fail.
public final class PeeredSource: ContentSource {
    public let upstream: any ContentSource
    public let peers: PeerSet
    public let store: BlobStore
    let client: PeerClient
    let network: PeerNetwork
    let takeover: Int64
    let pollInterval: Int64
    /// The upstream's WAN gate: while it is closed, manifests come from the peers.
    let gate: WANGate?
    private let logger: Logger

    public init(
        upstream: any ContentSource, network: PeerNetwork, store: BlobStore, takeover: Int64 = 2_000_000_000,
        pollInterval: Int64 = 250_000_000, gate: WANGate? = nil, logger: Logger
    ) {
        self.gate = gate
        self.upstream = upstream
        self.peers = network.peers
        self.store = store
        client = network.client
        self.network = network
        self.takeover = takeover
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// How long a satellite yields its claims to a peer that never shows as a source of the
    /// blob (a winner that hangs before its first request) before it fetches the blob itself.
    static let maxYield: Int64 = 15_000_000_000

    /// How often a peer's GET may fail without a byte before the peer is left out for a blob.
    static let maxStrikes = 3

    public var name: String { "peers+\(upstream.name)" }

    /// Every body byte received: the WAN's and the LAN's.
    public var bytesReceived: Int64 { upstream.bytesReceived + client.bytesReceived }
    /// Bytes from the upstream (the WAN).
    public var wanBytesReceived: Int64 { upstream.bytesReceived }
    /// Bytes from peers (the LAN).
    public var lanBytesReceived: Int64 { client.bytesReceived }

    /// From the upstream while the WAN gate lets a transfer start (``WANGate/check()``, which
    /// reserves nothing); from the peers when it does not, or when the upstream fails with a
    /// link error or defers. When no peer has it either, the upstream's answer stands (the
    /// gate's `deferred`, the link error).
    public func manifest(_ repository: RepositoryName, reference: Reference) async throws -> ImagePublisher.ManifestContent {
        if wanOpen() {
            do {
                return try await upstream.manifest(repository, reference: reference)
            } catch let error as SyncError where Self.peersMayAnswer(error) {
                if let found = try await peerManifest(repository, reference: reference) { return found }
                throw error
            }
        }
        if let found = try await peerManifest(repository, reference: reference) { return found }
        return try await upstream.manifest(repository, reference: reference)
    }

    public func manifestDigest(_ repository: RepositoryName, tag: String) async throws -> Digest? {
        if wanOpen() {
            do {
                return try await upstream.manifestDigest(repository, tag: tag)
            } catch let error as SyncError where Self.peersMayAnswer(error) {
                if let found = await peerTagDigest(repository, tag: tag) { return found }
                throw error
            }
        }
        if let found = await peerTagDigest(repository, tag: tag) { return found }
        return try await upstream.manifestDigest(repository, tag: tag)
    }

    /// Whether a WAN transfer could start now (no gate: always).
    private func wanOpen() -> Bool {
        guard let gate else { return true }
        do {
            try gate.check()
            return true
        } catch {
            return false
        }
    }

    /// Upstream failures the peers may stand in for: the link, a closed WAN.
    static func peersMayAnswer(_ error: SyncError) -> Bool {
        error.kind == .link || error.kind == .deferred
    }

    /// The digest the peers' syncs hold for `repository:tag` once discovery had its time
    /// (``PeerNetwork/tagDigest(_:tag:)``: the one most of them hold). Nil when none holds it.
    func peerTagDigest(_ repository: RepositoryName, tag: String) async -> Digest? {
        await network.settle()
        let chosen = await network.tagDigest(repository, tag: tag)
        if let chosen {
            logger.info("tag resolved by the peers", metadata: ["image": "\(repository):\(tag)", "digest": "\(chosen)"])
        }
        return chosen
    }

    /// A manifest from the peers: a tag through ``peerTagDigest(_:tag:)``, then the first
    /// live peer that holds the digest and sends bytes that hash to it (one that sends other
    /// bytes is a liar for it). Nil when no peer has it.
    func peerManifest(_ repository: RepositoryName, reference: Reference) async throws -> ImagePublisher.ManifestContent? {
        let digest: Digest
        switch reference {
        case .digest(let pinned): digest = pinned
        case .tag(let tag):
            guard let resolved = await peerTagDigest(repository, tag: tag) else { return nil }
            digest = resolved
        }
        await network.settle()
        for url in peers.live() where !peers.isLiar(url, for: digest) {
            if Task.isCancelled { throw SyncError(.cancelled, "cancelled") }
            do {
                if let found = try await client.manifest(url, digest: digest) {
                    logger.debug("manifest from a peer", metadata: ["peer": "\(url)", "digest": "\(digest)"])
                    return found
                }
            } catch {
                logger.warning("peer sent a manifest that does not match its digest", metadata: ["peer": "\(url)", "error": "\(error)"])
                peers.markLiar(url, for: digest)
            }
        }
        return nil
    }

    public func referrers(_ repository: RepositoryName, of digest: Digest) async throws -> [UInt8]? {
        try await upstream.referrers(repository, of: digest)
    }

    public func smallBlob(_ repository: RepositoryName, digest: Digest, limit: Int) async throws -> [UInt8] {
        try await upstream.smallBlob(repository, digest: digest, limit: limit)
    }

    enum Choice {
        case peer(String)
        case upstream
        case wait
    }

    public func fetchBlob(
        _ digest: Digest, size: Int64, repository: RepositoryName, into ingest: Ingest, progress: @escaping @Sendable (Int64) -> Void
    ) async throws {
        await network.settle()
        // A blob of unknown size cannot be followed (nor its lies bounded): the WAN.
        guard size > 0, !peers.known.isEmpty else {
            try await upstream.fetchBlob(digest, size: size, repository: repository, into: ingest, progress: progress)
            return
        }
        store.setFollowing(digest, true)
        defer {
            store.endClaim(digest)
            store.setFollowing(digest, false)
        }
        let started = MonotonicClock.now()
        // Peers whose bytes are in the ingest since it last started over.
        var contributors: Set<String> = []
        // Peers that refused or cut this blob without progress in this attempt.
        var refused: Set<String> = []
        // Since when this satellite yields its claims to peers that do not show as a source.
        var yieldingSince: Int64?
        // GETs of a peer that failed without a byte: a race until it happened ``maxStrikes`` times.
        var strikes: [String: Int] = [:]
        while true {
            if Task.isCancelled { throw SyncError(.cancelled, "cancelled") }
            if ingest.offset >= size {
                if ingest.offset == size, ingest.digest == digest { return }
                caught(contributors, digest, ingest)
                contributors = []
                continue
            }
            var choice = await choose(digest, excluding: refused, since: started)
            if case .upstream = choice {
                if await claim(digest, excluding: refused) {
                    yieldingSince = nil
                } else if let since = yieldingSince, MonotonicClock.now() - since > Self.maxYield {
                    // The winner never showed as a source: fetch it after all.
                    logger.warning("a peer claimed the blob but never served it: fetching it", metadata: ["digest": "\(digest)"])
                } else {
                    // Another satellite fetches it or won the claim: follow it once it shows.
                    logger.debug("another satellite fetches the blob", metadata: ["digest": "\(digest)"])
                    if yieldingSince == nil { yieldingSince = MonotonicClock.now() }
                    choice = .wait
                }
            } else {
                yieldingSince = nil
            }
            switch choice {
            case .wait:
                try await sleep(pollInterval)
            case .upstream:
                store.setFollowing(digest, false)
                logger.debug("blob from the upstream", metadata: ["digest": "\(digest)", "offset": "\(ingest.offset)"])
                try await upstream.fetchBlob(digest, size: size, repository: repository, into: ingest, progress: progress)
                if !contributors.isEmpty, ingest.offset == size, ingest.digest != digest {
                    // The peers' prefix was a lie: start over from the upstream alone.
                    caught(contributors, digest, ingest)
                    contributors = []
                    continue
                }
                return
            case .peer(let url):
                store.endClaim(digest)
                let before = ingest.offset
                do {
                    logger.debug("blob from a peer", metadata: ["digest": "\(digest)", "peer": "\(url)", "offset": "\(before)"])
                    let moved = try await client.fetch(url, digest: digest, size: size, into: ingest, progress: progress)
                    if moved > 0 { contributors.insert(url) }
                    if moved == 0 { refused.insert(url) }
                } catch let failure as PeerClient.Failure {
                    if ingest.offset > before { contributors.insert(url) }
                    switch failure {
                    case .down(let message):
                        logger.info("peer is down", metadata: ["peer": "\(url)", "error": "\(message)"])
                        peers.markDown(url)
                    case .unavailable(let message):
                        // Cut mid-blob (its own source failed, or it died): probe again and
                        // continue from here; without progress, leave it out for this blob.
                        logger.info("peer transfer cut", metadata: ["peer": "\(url)", "digest": "\(digest)", "error": "\(message)"])
                        if ingest.offset == before {
                            // Often a race, not a refusal: the peer looked like a fetcher when
                            // probed (its download claimed, its follow marker not yet set) and
                            // follows or decides by the time the GET arrives. Left out for good
                            // only after it happened thrice: left out at once, it could not be
                            // followed when it did fetch the blob, and this satellite would
                            // fetch the blob from the WAN a second time.
                            strikes[url, default: 0] += 1
                            if strikes[url, default: 0] >= Self.maxStrikes {
                                refused.insert(url)
                            } else {
                                try await sleep(pollInterval)
                            }
                        }
                    case .lie(let message):
                        logger.warning("peer sent too much", metadata: ["peer": "\(url)", "error": "\(message)"])
                        contributors.insert(url)
                        caught(contributors, digest, ingest)
                        contributors = []
                    }
                }
            }
        }
    }

    /// The bytes of `contributors` did not hash to `digest`: they are liars for it, and the
    /// ingest starts over.
    private func caught(_ contributors: Set<String>, _ digest: Digest, _ ingest: Ingest) {
        for url in contributors {
            logger.warning("peer sent content that does not match its digest", metadata: ["peer": "\(url)", "digest": "\(digest)"])
            peers.markLiar(url, for: digest)
        }
        try? ingest.reset()
    }

    private func sleep(_ nanoseconds: Int64) async throws {
        do {
            try await Task.sleep(nanoseconds: UInt64(nanoseconds))
        } catch {
            throw SyncError(.cancelled, "cancelled")
        }
    }

    /// Whether this satellite fetches `digest` from the upstream for the site
    /// (``PeerNetwork/claim(_:store:excluding:)``).
    func claim(_ digest: Digest, excluding refused: Set<String>) async -> Bool {
        await network.claim(digest, store: store, excluding: refused)
    }

    /// Where the next bytes of `digest` come from (see the type's comment).
    func choose(_ digest: Digest, excluding refused: Set<String>, since started: Int64) async -> Choice {
        decide(digest, await probe(digest), excluding: refused, since: started)
    }

    /// What the live peers that are not liars for `digest` say about it (``PeerNetwork/probe(_:logger:)``).
    private func probe(_ digest: Digest) async -> [PeerClient.Probe] {
        await network.probe(digest, logger: logger)
    }

    private func decide(_ digest: Digest, _ probes: [PeerClient.Probe], excluding refused: Set<String>, since started: Int64) -> Choice {
        let usable = probes.filter { !refused.contains($0.url) }
        if let fastest = usable.filter({ $0.holding == .complete }).min(by: { $0.elapsed < $1.elapsed }) {
            return .peer(fastest.url)
        }
        let fetching = Set(usable.compactMap { probe -> String? in
            if case .fetching = probe.holding { return probe.url }
            return nil
        })
        let syncing = probes.filter { $0.syncing || $0.holding != .absent }.map(\.url)
        let ranking = PeerSet.rank(syncing + [peers.selfURL], for: digest)
        if let leader = ranking.first(where: { fetching.contains($0) }) { return .peer(leader) }
        // Nobody fetches it: the first in rank that is still in the running fetches.
        let contenders = ranking.filter { $0 == peers.selfURL || !refused.contains($0) }
        let rank = contenders.firstIndex(of: peers.selfURL) ?? 0
        if rank == 0 || MonotonicClock.now() - started >= Int64(rank) * takeover { return .upstream }
        return .wait
    }
}
