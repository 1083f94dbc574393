import ContentStore
import Logging
import OCICore
import Synchronization

/// The pull-through cache (`proxy` in the config): a pull of an allowed repository that
/// misses the store is fetched from the upstream (or the mirror the client named) with the
/// sync's own client and transfer layer (same auth, same bandwidth cap, same resume and
/// verification), and made visible through the one publish step.
///
/// Blobs stream to clients while they are written: the transfer writes the store's ingest
/// file and every client follows that file (``GrowingBlob``), so concurrent pulls of one blob
/// share one upstream transfer, a late client reads what is on disk and then follows, and a
/// client that disconnects cancels nothing. Manifests are small: fetched whole (one fetch per
/// manifest however many clients ask), checked against their digest and published under
/// ``ImagePublisher/Origin/proxy`` (the agent's tags, but cache).
public final class PullThroughProxy: PullThrough {
    public struct Configuration: Sendable {
        /// `proxy.enabled`: when false no pull is routed upstream (the store alone answers).
        public var enabled: Bool
        /// Whether the local repository path may be proxied (`proxy.allow`).
        public var allows: @Sendable (String) -> Bool
        /// Nanoseconds between two upstream checks of a cached tag.
        public var tagRecheck: Int64
        /// How long a transfer keeps retrying a broken link before it fails its clients.
        public var transferTimeout: Int64
        /// Keep a transfer going when its last client left (the profile's setting).
        public var continueUnwatched: Bool
        /// Makes room in the quota for `bytes` more (evicting cache); throws when it cannot.
        public var makeRoom: (@Sendable (Digest, Int64) throws -> Void)?

        public init(
            enabled: Bool = true, allows: @escaping @Sendable (String) -> Bool = { _ in true }, tagRecheck: Int64 = 300_000_000_000,
            transferTimeout: Int64 = 120_000_000_000, continueUnwatched: Bool = true,
            makeRoom: (@Sendable (Digest, Int64) throws -> Void)? = nil
        ) {
            self.enabled = enabled
            self.allows = allows
            self.tagRecheck = tagRecheck
            self.transferTimeout = transferTimeout
            self.continueUnwatched = continueUnwatched
            self.makeRoom = makeRoom
        }
    }

    private struct Transfer {
        var blob: GrowingBlob
        var task: Task<Void, Never>?
    }

    private struct State {
        var transfers: [Digest: Transfer] = [:]
        /// `local@digest` -> size, from the manifests proxied into `local`.
        var sizes: [String: Int64] = [:]
        /// `local:tag` -> when it was last checked upstream (monotonic ns).
        var checked: [String: Int64] = [:]
        var manifestFlights: [String: Task<Void, any Error>] = [:]
    }

    final class Counters: Sendable {
        let hits = Atomic<Int64>(0)
        let misses = Atomic<Int64>(0)
        let bytes = Atomic<Int64>(0)
        let coalesced = Atomic<Int64>(0)
        let failures = Atomic<Int64>(0)
        let transfers = Atomic<Int64>(0)
        /// Blob bytes taken from the site's peers (LAN).
        let peerBytes = Atomic<Int64>(0)
        /// Peers caught sending bytes that did not hash to the blob.
        let liars = Atomic<Int64>(0)
        /// Misses answered from the peers while the WAN was closed or the upstream failed.
        let peerServed = Atomic<Int64>(0)
    }

    /// What a reload replaces (``update(configuration:policy:upstream:mirrors:)``): the
    /// settings and the clients. Requests and transfers keep the generation they started
    /// with; a replaced generation's clients are shut down once nothing uses them.
    final class Generation: Sendable {
        let configuration: Configuration
        let publisher: ImagePublisher
        let upstream: UpstreamClient?
        let mirrors: [String: UpstreamClient]
        /// Requests and transfers running with this generation.
        let users = Atomic<Int>(0)

        init(configuration: Configuration, publisher: ImagePublisher, upstream: UpstreamClient?, mirrors: [String: UpstreamClient]) {
            self.configuration = configuration
            self.publisher = publisher
            self.upstream = upstream
            self.mirrors = mirrors
        }

        var clients: [UpstreamClient] { [upstream].compactMap { $0 } + mirrors.values }
    }

    private let store: BlobStore
    private let logger: Logger
    private let current: Mutex<Generation>
    private let state = Mutex(State())
    private let counters = Counters()
    /// The site's peers, asked before the upstream on a miss (``usePeers(_:)``).
    private let network = Mutex<PeerNetwork?>(nil)

    public var configuration: Configuration { generation.configuration }
    private var generation: Generation { current.withLock { $0 } }
    /// The clients in use: the configured upstream's and each mirror's (to reuse on reload).
    public var clients: (upstream: UpstreamClient?, mirrors: [String: UpstreamClient]) {
        let generation = self.generation
        return (generation.upstream, generation.mirrors)
    }

    /// Entries of the size table before it is cleared (it only saves HEAD requests).
    static let maxSizes = 100_000

    /// - Parameters:
    ///   - upstream: the configured upstream (the sync's client), for names without a mirror.
    ///   - mirrors: registry name (`docker.io`) -> its client, sharing the sync's limiter.
    public init(
        configuration: Configuration, store: BlobStore, policy: any PublishPolicy, upstream: UpstreamClient?,
        mirrors: [String: UpstreamClient], logger: Logger
    ) {
        self.store = store
        self.logger = logger
        current = Mutex(
            Generation(
                configuration: configuration, publisher: ImagePublisher(store: store, policy: policy, logger: logger), upstream: upstream,
                mirrors: mirrors))
    }

    /// Puts reloaded settings in effect (SIGHUP, a new upstream or credentials from Ground
    /// Control). Running requests and transfers finish with what they started with; clients
    /// that are not reused are shut down once nothing uses them.
    public func update(configuration: Configuration, policy: any PublishPolicy, upstream: UpstreamClient?, mirrors: [String: UpstreamClient]) {
        let next = Generation(
            configuration: configuration, publisher: ImagePublisher(store: store, policy: policy, logger: logger), upstream: upstream,
            mirrors: mirrors)
        let previous = current.withLock { current in
            defer { current = next }
            return current
        }
        let kept = Set(next.clients.map(ObjectIdentifier.init))
        let retired = previous.clients.filter { !kept.contains(ObjectIdentifier($0)) }
        guard !retired.isEmpty else { return }
        Task.detached {
            while previous.users.load(ordering: .acquiring) > 0 {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            }
            for client in retired { await client.shutdown() }
        }
    }

    /// The current generation, counted as one more user until ``release(_:)``. Taken under
    /// the lock ``update(configuration:policy:upstream:mirrors:)`` swaps it under, so a
    /// replaced generation's count only goes down.
    private func acquire() -> Generation {
        current.withLock { generation in
            generation.users.wrappingAdd(1, ordering: .relaxed)
            return generation
        }
    }

    private func release(_ generation: Generation) {
        generation.users.wrappingSubtract(1, ordering: .releasing)
    }

    /// Runs `body` with the current generation, counted as one of its users.
    private func using<T: Sendable>(_ body: (Generation) async throws -> T) async rethrows -> T {
        let generation = acquire()
        defer { release(generation) }
        return try await body(generation)
    }

    /// Asks the site's peers (`peers`, the process's one network) before the upstream on a
    /// miss: blobs by digest, and manifests by digest when the WAN is closed or the upstream
    /// fails (docs/proxy.md, "Peers").
    public func usePeers(_ network: PeerNetwork?) {
        self.network.withLock { $0 = network }
    }

    private var peers: PeerNetwork? { network.withLock { $0 } }

    // MARK: Routing

    public func route(_ name: RepositoryName, namespace: String?) -> PullThroughRoute? {
        let generation = self.generation
        let configuration = generation.configuration
        let mirrors = generation.mirrors
        guard configuration.enabled else { return nil }
        var route: PullThroughRoute?
        if let namespace, mirrors[namespace] != nil, let local = RepositoryName("\(namespace)/\(name)") {
            route = PullThroughRoute(local: local, remote: name, registry: namespace)
        } else if let slash = name.value.firstIndex(of: "/") {
            let first = String(name.value[..<slash])
            if mirrors[first] != nil, let remote = RepositoryName(String(name.value[name.value.index(after: slash)...])) {
                route = PullThroughRoute(local: name, remote: remote, registry: first)
            }
        }
        if route == nil, generation.upstream != nil { route = PullThroughRoute(local: name, remote: name, registry: nil) }
        guard var route else { return nil }
        route.allowed = configuration.allows(route.local.value)
        return route
    }

    private func client(_ route: PullThroughRoute, _ generation: Generation) throws -> UpstreamClient {
        let client = route.registry.map { generation.mirrors[$0] } ?? generation.upstream
        guard let client else { throw PullThroughError(.unavailable, "no upstream for \(route)") }
        return client
    }

    public func isStale(_ route: PullThroughRoute, tag: String) -> Bool {
        let now = MonotonicClock.now()
        let recheck = configuration.tagRecheck
        return state.withLock { state in
            guard let checked = state.checked["\(route.local):\(tag)"] else { return true }
            return now - checked >= recheck
        }
    }

    private func markChecked(_ route: PullThroughRoute, _ tag: String) {
        let now = MonotonicClock.now()
        state.withLock { $0.checked["\(route.local):\(tag)"] = now }
    }

    public func recordHit() {
        counters.hits.wrappingAdd(1, ordering: .relaxed)
    }

    // MARK: Manifests

    public func fetchManifest(_ route: PullThroughRoute, reference: Reference) async throws {
        let key = "\(route.local)@\(reference)"
        let task: Task<Void, any Error> = state.withLock { state in
            if let flight = state.manifestFlights[key] { return flight }
            let flight = Task { try await self.using { try await self.loadManifest(route, reference: reference, $0) } }
            state.manifestFlights[key] = flight
            return flight
        }
        defer { _ = state.withLock { $0.manifestFlights.removeValue(forKey: key) } }
        try await task.value
    }

    private func loadManifest(_ route: PullThroughRoute, reference: Reference, _ generation: Generation) async throws {
        let client = try self.client(route, generation)
        let tag = reference.tag
        var cached: Digest?
        if let tag, let digest = store.resolveTag(route.local, tag), store.manifestMediaType(route.local, digest) != nil {
            cached = digest
            do {
                let current = try await client.manifestDigest(route.remote, tag: tag)
                if current == digest {
                    markChecked(route, tag)
                    return
                }
            } catch let error as SyncError where error.kind == .link || error.kind == .cancelled || error.kind == .deferred {
                // Offline: the cached tag is served; ask again after tagRecheck, not at every pull.
                logger.info("upstream unreachable: serving the cached tag", metadata: ["image": "\(route.local):\(tag)", "error": "\(error)"])
                markChecked(route, tag)
                return
            } catch {
                // Refused or gone upstream: a cached tag is still what this site last saw.
                markChecked(route, tag)
                return
            }
        }
        counters.misses.wrappingAdd(1, ordering: .relaxed)
        let content: ImagePublisher.ManifestContent
        // Resolved by the peers: the upstream is asked again at the next pull.
        var fromPeers = false
        do {
            content = try await client.manifest(route.remote, reference: reference)
        } catch let error as SyncError {
            if let tag, cached != nil, error.kind == .link || error.kind == .deferred {
                markChecked(route, tag)
                return
            }
            // The WAN is closed or the link is down: a peer of the site may hold it.
            guard error.kind == .link || error.kind == .deferred, let found = await peerManifest(route, reference: reference) else {
                counters.failures.wrappingAdd(1, ordering: .relaxed)
                throw Self.map(error)
            }
            content = found
            fromPeers = true
        }
        let manifest = content.manifest
        state.withLock { state in
            if state.sizes.count > Self.maxSizes { state.sizes = [:] }
            for descriptor in [manifest.config].compactMap({ $0 }) + (manifest.layers ?? []) where descriptor.size >= 0 {
                state.sizes["\(route.local)@\(descriptor.digest)"] = descriptor.size
            }
        }
        do {
            try generation.publisher.publish(
                ImagePublisher.Image(repository: route.local, tags: tag.map { [$0] } ?? [], top: content, origin: .proxy))
        } catch ImagePublisher.Error.refused(let reason) {
            throw PullThroughError(.denied, "manifest \(route.local)@\(content.digest) refused: \(reason)")
        } catch {
            throw PullThroughError(.unavailable, "cannot store manifest \(route.local)@\(content.digest): \(error)")
        }
        if let tag, !fromPeers { markChecked(route, tag) }
        logger.info(
            "proxied manifest",
            metadata: [
                "image": "\(route.local)", "reference": "\(reference)", "digest": "\(content.digest)", "from": "\(fromPeers ? "peers" : "upstream")",
            ])
    }

    /// A manifest from the site's peers, for when the upstream cannot answer: by digest from
    /// the first live peer that sends bytes hashing to it (one that sends other bytes is a
    /// liar for it); a tag through the digest the peers' syncs hold for it (the site's
    /// desired state, `/peer/v1/tags/`: tags of the proxy's cache are never a peer's answer),
    /// the one most of them hold (``PeerNetwork/tagDigest(_:tag:)``). Nil when no peer has it.
    private func peerManifest(_ route: PullThroughRoute, reference: Reference) async -> ImagePublisher.ManifestContent? {
        guard let network = peers else { return nil }
        let candidates = network.peers.live()
        guard !candidates.isEmpty else { return nil }
        let digest: Digest
        switch reference {
        case .digest(let pinned):
            digest = pinned
        case .tag(let tag):
            guard let chosen = await network.tagDigest(route.local, tag: tag) else { return nil }
            logger.info("proxied tag resolved by the peers", metadata: ["image": "\(route.local):\(tag)", "digest": "\(chosen)"])
            digest = chosen
        }
        for url in candidates where !network.peers.isLiar(url, for: digest) {
            do {
                if let found = try await network.client.manifest(url, digest: digest) {
                    counters.peerServed.wrappingAdd(1, ordering: .relaxed)
                    return found
                }
            } catch {
                logger.warning("peer sent a manifest that does not match its digest", metadata: ["peer": "\(url)", "error": "\(error)"])
                network.peers.markLiar(url, for: digest)
                counters.liars.wrappingAdd(1, ordering: .relaxed)
            }
        }
        return nil
    }

    public func referrers(_ route: PullThroughRoute, of digest: Digest) async throws -> [UInt8]? {
        do {
            return try await using { try await client(route, $0).referrers(route.remote, of: digest) }
        } catch let error as SyncError {
            throw Self.map(error)
        }
    }

    // MARK: Blobs

    public func blobSize(_ route: PullThroughRoute, digest: Digest) async throws -> Int64 {
        if let size = state.withLock({ $0.sizes["\(route.local)@\(digest)"] }) { return size }
        let answer: UpstreamClient.Fetched
        do {
            answer = try await using { generation in
                try await client(route, generation).fetch(
                    "/v2/\(route.remote)/blobs/\(digest)", scope: "repository:\(route.remote):pull", method: "HEAD", limit: 0)
            }
        } catch let error as SyncError {
            // The WAN is closed or the link is down: a peer that holds the blob verified says
            // its size (its bytes are checked against the digest like any).
            if error.kind == .link || error.kind == .deferred, let network = peers,
                let size = await network.probe(digest, logger: logger).compactMap(\.size).first
            {
                state.withLock { $0.sizes["\(route.local)@\(digest)"] = size }
                return size
            }
            throw Self.map(error)
        }
        switch answer.status {
        case 200:
            guard let size = answer.contentLength, size >= 0 else {
                throw PullThroughError(.badUpstream, "upstream announced no size for blob \(digest) of \(route)")
            }
            state.withLock { $0.sizes["\(route.local)@\(digest)"] = size }
            return size
        case 404:
            throw PullThroughError(.notFound, "blob \(digest) is not known to \(route) upstream")
        case 408, 429, 500...599:
            throw PullThroughError(.unavailable, "upstream answered HTTP \(answer.status) for blob \(digest) of \(route)")
        default:
            throw PullThroughError(.denied, "upstream answered HTTP \(answer.status) for blob \(digest) of \(route)")
        }
    }

    public func fetchBlob(_ route: PullThroughRoute, digest: Digest) async throws -> GrowingBlob {
        // Confirms the upstream holds the blob in this repository (a manifest of it named the
        // blob, or a HEAD) before a client of it joins a transfer or anything is linked.
        let size = try await blobSize(route, digest: digest)
        if let joined = join(digest) { return joined }
        if store.hasBlob(digest) {
            // Stored for another repository (or by a transfer that just finished).
            do { try store.linkBlob(digest, into: route.local) } catch {
                throw PullThroughError(.unavailable, "cannot link \(digest) into \(route.local): \(error)")
            }
            counters.hits.wrappingAdd(1, ordering: .relaxed)
            let blob = GrowingBlob(digest: digest, size: size, store: store)
            blob.finish()
            return blob
        }
        let generation = acquire()
        // Released here, or by the transfer once it ends.
        var handedOver = false
        defer { if !handedOver { release(generation) } }
        let configuration = generation.configuration
        if let room = configuration.makeRoom {
            do { try room(digest, size) } catch {
                throw PullThroughError(.unavailable, "no room in the store's quota for blob \(digest) (\(ByteSize.format(size))): \(error)")
            }
        }
        let client = try self.client(route, generation)
        // Outside the window or budget the client gets a 503 with Retry-After now, not a
        // transfer that stops at its first byte; unless a peer of the site holds the blob or
        // fetches it: then the transfer takes it from the peer, over the LAN.
        let network = peers
        if let gate = client.gate {
            do {
                try gate.check()
            } catch let error as SyncError {
                guard let network, ProxiedBlobSource.choose(await network.probe(digest, logger: logger), excluding: []) != nil
                else { throw Self.map(error, now: gate.clock.now()) }
                counters.peerServed.wrappingAdd(1, ordering: .relaxed)
                logger.info("WAN closed: proxied blob from the site's peers", metadata: ["blob": "\(digest)", "repository": "\(route.local)"])
            }
        }
        let (blob, started) = state.withLock { state -> (GrowingBlob, Bool) in
            if let running = state.transfers[digest] { return (running.blob, false) }
            let blob = GrowingBlob(digest: digest, size: size, store: store)
            state.transfers[digest] = Transfer(blob: blob, task: nil)
            return (blob, true)
        }
        guard started else {
            counters.coalesced.wrappingAdd(1, ordering: .relaxed)
            return blob
        }
        counters.misses.wrappingAdd(1, ordering: .relaxed)
        counters.transfers.wrappingAdd(1, ordering: .relaxed)
        handedOver = true
        let task = Task.detached { [self] in
            defer { release(generation) }
            await self.run(blob, route: route, client: client, network: network, transferTimeout: configuration.transferTimeout)
        }
        state.withLock { $0.transfers[digest]?.task = task }
        if !configuration.continueUnwatched {
            blob.setUnwatchedHandler { [weak self] in
                self?.state.withLock { $0.transfers[digest]?.task }?.cancel()
            }
        }
        return blob
    }

    /// The transfer in progress for `digest`, joined (counted as a coalesced waiter).
    private func join(_ digest: Digest) -> GrowingBlob? {
        guard let running = state.withLock({ $0.transfers[digest]?.blob }) else { return nil }
        counters.coalesced.wrappingAdd(1, ordering: .relaxed)
        return running
    }

    /// One proxied transfer: the sync's retry, resume and commit loop, its progress fed to
    /// the clients that follow the file.
    private func run(_ blob: GrowingBlob, route: PullThroughRoute, client: UpstreamClient, network: PeerNetwork?, transferTimeout: Int64) async {
        let digest = blob.digest
        // The site's peers first, then the upstream; its clients see a peer's bytes only once
        // the blob is verified (``ProxiedBlobSource/releasable``).
        let source = ProxiedBlobSource(upstream: client, network: network, store: store, counters: counters, logger: logger)
        let transfer = BlobTransfer(source: source, store: store)
        // The source shows the download as following while it takes the blob from a peer,
        // until the commit (a peer must not take it for a source): cleared here after it.
        defer { if source.asked { store.setFollowing(digest, false) } }
        do {
            // No checkpoint fsync while clients wait: on a disk slower than the link each one
            // stalled the transfer (and every client) until the disk caught up. A link cut
            // still checkpoints, a killed process resumes from the whole file (same boot);
            // only a power cut mid-transfer starts the blob over. The clients get the last
            // byte once the digest matched, not after the commit's fsync: what they received
            // is verified, and the store's copy is made durable before it becomes visible.
            try await transfer.download(
                digest, size: blob.size, repository: route.remote, deadline: MonotonicClock.now() + transferTimeout,
                checkpointInterval: .max, following: blob
            ) { offset in
                blob.advance(to: min(offset, source.releasable))
            }
            try store.linkBlob(digest, into: route.local)
            blob.finish()
            if transfer.resumeCount > 0 {
                logger.info("proxied blob resumed from its partial file", metadata: ["blob": "\(digest)", "repository": "\(route.local)"])
            }
        } catch {
            counters.failures.wrappingAdd(1, ordering: .relaxed)
            logger.warning("proxied blob failed", metadata: ["blob": "\(digest)", "repository": "\(route.local)", "error": "\(error)"])
            blob.fail("\(error)")
        }
        _ = state.withLock { $0.transfers.removeValue(forKey: digest) }
    }

    // MARK: Errors and metrics

    static func map(_ error: SyncError, now: Int64 = SystemWallClock.shared.now()) -> PullThroughError {
        switch error.kind {
        case .deferred:
            PullThroughError(
                .unavailable, "not in the cache, and the WAN is closed: \(error.message)",
                retryAfter: error.resumesAt.map { max(1, $0 - now) })
        case .notFound: PullThroughError(.notFound, error.message)
        case .refused: PullThroughError(.denied, "upstream refused: \(error.message)")
        case .link, .cancelled: PullThroughError(.unavailable, "upstream unavailable: \(error.message)")
        case .corrupt: PullThroughError(.badUpstream, "upstream sent bad content: \(error.message)")
        case .storage: PullThroughError(.unavailable, "store failed: \(error.message)")
        }
    }

    /// Prometheus text lines for `/metrics`.
    public func metricsText() -> String {
        func counter(_ name: String, _ help: String, _ value: Int64) -> String {
            "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name) \(value)\n"
        }
        let running = state.withLock { $0.transfers.count }
        return counter("satellite_proxy_hits_total", "Pulls of proxied repositories answered from the store.", counters.hits.load(ordering: .relaxed))
            + counter("satellite_proxy_misses_total", "Manifests and blobs fetched from an upstream on a miss.", counters.misses.load(ordering: .relaxed))
            + counter("satellite_proxy_fetched_bytes_total", "Blob bytes the proxy fetched from upstreams (WAN).", counters.bytes.load(ordering: .relaxed))
            + counter("satellite_proxy_coalesced_waiters_total", "Clients that joined a proxied transfer already running.", counters.coalesced.load(ordering: .relaxed))
            + counter("satellite_proxy_failures_total", "Proxied fetches that failed.", counters.failures.load(ordering: .relaxed))
            + counter("satellite_proxy_transfers_total", "Upstream blob transfers the proxy started.", counters.transfers.load(ordering: .relaxed))
            + counter("satellite_proxy_peer_bytes_total", "Blob bytes the proxy took from the site's peers (LAN).", counters.peerBytes.load(ordering: .relaxed))
            + counter(
                "satellite_proxy_peer_served_total", "Misses the upstream could not answer (WAN closed, link down) that the site's peers served.",
                counters.peerServed.load(ordering: .relaxed))
            + counter("satellite_proxy_peer_liars_total", "Peers caught sending proxied content that did not match its digest.", counters.liars.load(ordering: .relaxed))
            + "# HELP satellite_proxy_transfers_running Proxied blob transfers in progress.\n# TYPE satellite_proxy_transfers_running gauge\nsatellite_proxy_transfers_running \(running)\n"
    }
}
