import ContentStore
import Logging
import OCICore
import Synchronization

/// Where the bytes of one proxied blob come from (``PullThroughProxy``): the site's peers
/// first, the upstream (or the mirror the client named) after them. One per transfer, so
/// what it learned about the peers (who sent bytes, who refused) holds across the retries of
/// ``BlobTransfer``, which owns the ingest and commits it once the bytes hash to the digest.
///
/// Each attempt probes the live peers that are not liars for the blob (HEAD
/// `/peer/v1/blobs/<digest>`, in parallel; one that does not answer is down for a while):
/// - a peer that holds the blob verified: fetch from the fastest to answer;
/// - else a peer that fetches it from its own source: follow its growing file, the one
///   that has most of it (this store then shows as `following` to the peers, never as
///   `fetching`: following a follower could make two satellites wait on each other);
/// - else the upstream, at the ingest's offset, once this satellite won the claim on the
///   blob (``PeerNetwork/claim(_:store:excluding:)``); a satellite that won it fetches it
///   and this one follows it.
/// A peer that dies or cuts mid-blob costs a re-probe; the next peer or the upstream continues
/// at the same offset. Bytes that do not hash to the digest once all are there make every
/// peer that contributed a liar for the blob; the ingest starts over and the blob comes from
/// the upstream (or an honest peer): a lying peer costs time, never integrity.
///
/// The proxy's clients stream the download file while it grows. Upstream bytes are released
/// to them as they arrive (as without peers); bytes from a peer are released only once the
/// whole blob matched its digest (``releasable``): a client that had received a liar's bytes
/// could not be given the right ones after them, and would be cut.
final class ProxiedBlobSource: ContentSource {
    let upstream: UpstreamClient
    let network: PeerNetwork?
    let store: BlobStore
    private let counters: PullThroughProxy.Counters
    private let logger: Logger

    private struct State {
        /// Peers whose bytes are in the ingest since it last started over.
        var contributors: Set<String> = []
        /// Peers that refused or cut this blob without progress.
        var refused: Set<String> = []
        /// The lowest offset written by a peer since the ingest last started over.
        var peerFrom: Int64?
        /// Whether the first attempt was made (the ingest's state then is the partial file's).
        var started = false
        /// The ingest resumed a partial file of an earlier transfer, whose bytes may have come
        /// from a peer: held back like a peer's, and on a mismatch fetched again (no liar known).
        var resumedPrefix = false
    }

    private let state = Mutex(State())

    init(upstream: UpstreamClient, network: PeerNetwork?, store: BlobStore, counters: PullThroughProxy.Counters, logger: Logger) {
        self.upstream = upstream
        self.network = network
        self.store = store
        self.counters = counters
        self.logger = logger
    }

    var name: String { network == nil ? upstream.name : "peers+\(upstream.name)" }

    var bytesReceived: Int64 { upstream.bytesReceived + (network?.bytesReceived ?? 0) }

    /// How many bytes of the download file the proxy's clients may read before the blob is
    /// verified: all of them, unless a peer wrote some (then those before its first byte).
    var releasable: Int64 { state.withLock { $0.peerFrom ?? .max } }

    /// Whether a transfer with the peers began (and may have left the follow marker set).
    var asked: Bool { state.withLock { $0.started } }

    func manifest(_ repository: RepositoryName, reference: Reference) async throws -> ImagePublisher.ManifestContent {
        try await upstream.manifest(repository, reference: reference)
    }

    func manifestDigest(_ repository: RepositoryName, tag: String) async throws -> Digest? {
        try await upstream.manifestDigest(repository, tag: tag)
    }

    func smallBlob(_ repository: RepositoryName, digest: Digest, limit: Int) async throws -> [UInt8] {
        try await upstream.smallBlob(repository, digest: digest, limit: limit)
    }

    func fetchBlob(
        _ digest: Digest, size: Int64, repository: RepositoryName, into ingest: Ingest, progress: @escaping @Sendable (Int64) -> Void
    ) async throws {
        // Right after a start, discovery gets its time to hear the peers (as the sync's first
        // transfers do) instead of sending the first misses to the WAN.
        await network?.settle()
        // A blob of unknown size cannot be followed (nor a peer's lie bounded): the upstream.
        guard let network, size > 0, !network.peers.known.isEmpty else {
            try await fromUpstream(digest, size: size, repository: repository, into: ingest, progress: progress)
            return
        }
        // Shows as following to the peers until the upstream is chosen (then as fetching,
        // and peers may follow it): a peer that probes while this one probes must not take
        // it for a source. The marker stays after a peer's bytes are all in: the transfer
        // that called this clears it after the commit (``PullThroughProxy``), so the hash
        // and fsync of a blob taken from a peer never show as `fetching` either.
        store.setFollowing(digest, true)
        state.withLock { state in
            guard !state.started else { return }
            state.started = true
            if ingest.offset > 0 {
                state.resumedPrefix = true
                state.peerFrom = 0
            }
        }
        // A claim counts for this attempt only (BlobStore's claims).
        defer { store.endClaim(digest) }
        // Since when this proxy yields its claims to peers that do not show as a source.
        var yieldingSince: Int64?
        while true {
            if Task.isCancelled { throw SyncError(.cancelled, "cancelled") }
            if ingest.offset >= size {
                if ingest.offset == size, ingest.digest == digest { return }
                // Without a peer's bytes in it, the commit reports the upstream's corruption.
                guard caught(digest, ingest, progress) else { return }
                continue
            }
            let refused = state.withLock { $0.refused }
            let choice = Self.choose(await network.probe(digest, logger: logger), excluding: refused)
            if choice == nil {
                // Nobody holds or fetches it: claim it (PeerNetwork.claim), so that two proxies,
                // or a proxy and a sync, that missed it at the same moment fetch it once.
                if await network.claim(digest, store: store, excluding: refused) {
                    yieldingSince = nil
                } else if let since = yieldingSince, MonotonicClock.now() - since > PeeredSource.maxYield {
                    logger.warning("a peer claimed the blob but never served it: fetching it", metadata: ["blob": "\(digest)"])
                } else {
                    if yieldingSince == nil { yieldingSince = MonotonicClock.now() }
                    try await sleep(Self.pollInterval)
                    continue
                }
                store.setFollowing(digest, false)
            } else {
                yieldingSince = nil
            }
            guard let url = choice else {
                try await fromUpstream(digest, size: size, repository: repository, into: ingest, progress: progress)
                if ingest.offset == size, ingest.digest != digest, caught(digest, ingest, progress) { continue }
                return
            }
            store.endClaim(digest)
            store.setFollowing(digest, true)
            try await fromPeer(url, network, digest: digest, size: size, into: ingest, progress: progress)
        }
    }

    /// How often a proxy that yielded its claim looks for the winner to show as a source.
    static let pollInterval: Int64 = 250_000_000

    private func sleep(_ nanoseconds: Int64) async throws {
        do {
            try await Task.sleep(nanoseconds: UInt64(nanoseconds))
        } catch {
            throw SyncError(.cancelled, "cancelled")
        }
    }

    private func fromUpstream(
        _ digest: Digest, size: Int64, repository: RepositoryName, into ingest: Ingest, progress: @escaping @Sendable (Int64) -> Void
    ) async throws {
        let start = ingest.offset
        let seen = Atomic<Int64>(start)
        let counters = self.counters
        logger.debug("proxied blob from the upstream", metadata: ["blob": "\(digest)", "offset": "\(start)"])
        try await upstream.fetchBlob(digest, size: size, repository: repository, into: ingest) { [self] offset in
            let previous = seen.exchange(offset, ordering: .relaxed)
            if offset < previous {
                // The upstream ignored the range and sends the whole blob again: the peers'
                // bytes are gone from the ingest.
                state.withLock { state in
                    state.contributors = []
                    state.peerFrom = nil
                    state.resumedPrefix = false
                }
            } else {
                counters.bytes.wrappingAdd(offset - previous, ordering: .relaxed)
            }
            progress(offset)
        }
    }

    private func fromPeer(
        _ url: String, _ network: PeerNetwork, digest: Digest, size: Int64, into ingest: Ingest,
        progress: @escaping @Sendable (Int64) -> Void
    ) async throws {
        let before = ingest.offset
        // Held back from the clients from here on, before the first byte arrives.
        let firstPeer = state.withLock { state -> Bool in
            guard state.peerFrom == nil else { return false }
            state.peerFrom = before
            return true
        }
        logger.debug("proxied blob from a peer", metadata: ["blob": "\(digest)", "peer": "\(url)", "offset": "\(before)"])
        var failure: PeerClient.Failure?
        do {
            _ = try await network.client.fetch(url, digest: digest, size: size, into: ingest, progress: progress)
        } catch let error as PeerClient.Failure {
            failure = error
        }
        let moved = ingest.offset - before
        counters.peerBytes.wrappingAdd(max(0, moved), ordering: .relaxed)
        state.withLock { state in
            if moved > 0 {
                state.contributors.insert(url)
            } else {
                state.refused.insert(url)
                if firstPeer { state.peerFrom = nil }
            }
        }
        switch failure {
        case nil:
            break
        case .down(let message):
            logger.info("peer is down", metadata: ["peer": "\(url)", "error": "\(message)"])
            network.peers.markDown(url)
        case .unavailable(let message):
            logger.info("peer transfer cut", metadata: ["peer": "\(url)", "blob": "\(digest)", "error": "\(message)"])
        case .lie(let message):
            logger.warning("peer sent too much", metadata: ["peer": "\(url)", "error": "\(message)"])
            state.withLock { _ = $0.contributors.insert(url) }
            _ = caught(digest, ingest, progress)
        }
    }

    /// The ingest's bytes do not hash to `digest`: the peers that contributed to them are
    /// liars for it, and the ingest starts over. False when no peer contributed (the
    /// upstream's content is wrong: the commit says so). `progress` hears the ingest start
    /// over, so the clients wait for the bytes again instead of reading a truncated file.
    private func caught(_ digest: Digest, _ ingest: Ingest, _ progress: @Sendable (Int64) -> Void) -> Bool {
        let (liars, resumed) = state.withLock { state -> (Set<String>, Bool) in
            defer {
                state.contributors = []
                state.peerFrom = nil
                state.resumedPrefix = false
            }
            return (state.contributors, state.resumedPrefix)
        }
        if resumed, liars.isEmpty {
            logger.warning("a resumed partial file does not match its digest: fetching the blob again", metadata: ["blob": "\(digest)"])
            try? ingest.reset()
            progress(ingest.offset)
            return true
        }
        guard !liars.isEmpty, let network else { return false }
        for url in liars.sorted() {
            logger.warning("peer sent content that does not match its digest", metadata: ["peer": "\(url)", "blob": "\(digest)"])
            network.peers.markLiar(url, for: digest)
            counters.liars.wrappingAdd(1, ordering: .relaxed)
        }
        try? ingest.reset()
        progress(ingest.offset)
        return true
    }

    /// The peer to take the blob from: the fastest of those that hold it verified, else the
    /// one furthest on of those that fetch it from their own source; nil: the upstream.
    static func choose(_ probes: [PeerClient.Probe], excluding refused: Set<String>) -> String? {
        let usable = probes.filter { !refused.contains($0.url) }
        if let fastest = usable.filter({ $0.holding == .complete }).min(by: { $0.elapsed < $1.elapsed }) {
            return fastest.url
        }
        let fetching = usable.compactMap { probe -> (url: String, offset: Int64)? in
            if case .fetching(let offset) = probe.holding { return (probe.url, offset) }
            return nil
        }
        return fetching.max { $0.offset != $1.offset ? $0.offset < $1.offset : $0.url > $1.url }?.url
    }
}
