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
            allows: @escaping @Sendable (String) -> Bool = { _ in true }, tagRecheck: Int64 = 300_000_000_000,
            transferTimeout: Int64 = 120_000_000_000, continueUnwatched: Bool = true,
            makeRoom: (@Sendable (Digest, Int64) throws -> Void)? = nil
        ) {
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
    }

    public let configuration: Configuration
    private let store: BlobStore
    private let publisher: ImagePublisher
    private let upstream: UpstreamClient?
    private let mirrors: [String: UpstreamClient]
    private let logger: Logger
    private let state = Mutex(State())
    private let counters = Counters()

    /// Entries of the size table before it is cleared (it only saves HEAD requests).
    static let maxSizes = 100_000

    /// - Parameters:
    ///   - upstream: the configured upstream (the sync's client), for names without a mirror.
    ///   - mirrors: registry name (`docker.io`) -> its client, sharing the sync's limiter.
    public init(
        configuration: Configuration, store: BlobStore, policy: any PublishPolicy, upstream: UpstreamClient?,
        mirrors: [String: UpstreamClient], logger: Logger
    ) {
        self.configuration = configuration
        self.store = store
        self.publisher = ImagePublisher(store: store, policy: policy, logger: logger)
        self.upstream = upstream
        self.mirrors = mirrors
        self.logger = logger
    }

    // MARK: Routing

    public func route(_ name: RepositoryName, namespace: String?) -> PullThroughRoute? {
        var route: PullThroughRoute?
        if let namespace, mirrors[namespace] != nil, let local = RepositoryName("\(namespace)/\(name)") {
            route = PullThroughRoute(local: local, remote: name, registry: namespace)
        } else if let slash = name.value.firstIndex(of: "/") {
            let first = String(name.value[..<slash])
            if mirrors[first] != nil, let remote = RepositoryName(String(name.value[name.value.index(after: slash)...])) {
                route = PullThroughRoute(local: name, remote: remote, registry: first)
            }
        }
        if route == nil, upstream != nil { route = PullThroughRoute(local: name, remote: name, registry: nil) }
        guard var route else { return nil }
        route.allowed = configuration.allows(route.local.value)
        return route
    }

    private func client(_ route: PullThroughRoute) throws -> UpstreamClient {
        let client = route.registry.map { mirrors[$0] } ?? upstream
        guard let client else { throw PullThroughError(.unavailable, "no upstream for \(route)") }
        return client
    }

    public func isStale(_ route: PullThroughRoute, tag: String) -> Bool {
        let now = MonotonicClock.now()
        return state.withLock { state in
            guard let checked = state.checked["\(route.local):\(tag)"] else { return true }
            return now - checked >= configuration.tagRecheck
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
            let flight = Task { try await self.loadManifest(route, reference: reference) }
            state.manifestFlights[key] = flight
            return flight
        }
        defer { _ = state.withLock { $0.manifestFlights.removeValue(forKey: key) } }
        try await task.value
    }

    private func loadManifest(_ route: PullThroughRoute, reference: Reference) async throws {
        let client = try self.client(route)
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
            } catch let error as SyncError where error.kind == .link || error.kind == .cancelled {
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
        do {
            content = try await client.manifest(route.remote, reference: reference)
        } catch let error as SyncError {
            if let tag, cached != nil, error.kind == .link {
                markChecked(route, tag)
                return
            }
            counters.failures.wrappingAdd(1, ordering: .relaxed)
            throw Self.map(error)
        }
        let manifest = content.manifest
        state.withLock { state in
            if state.sizes.count > Self.maxSizes { state.sizes = [:] }
            for descriptor in [manifest.config].compactMap({ $0 }) + (manifest.layers ?? []) where descriptor.size >= 0 {
                state.sizes["\(route.local)@\(descriptor.digest)"] = descriptor.size
            }
        }
        do {
            try publisher.publish(
                ImagePublisher.Image(repository: route.local, tags: tag.map { [$0] } ?? [], top: content, origin: .proxy))
        } catch ImagePublisher.Error.refused(let reason) {
            throw PullThroughError(.denied, "manifest \(route.local)@\(content.digest) refused: \(reason)")
        } catch {
            throw PullThroughError(.unavailable, "cannot store manifest \(route.local)@\(content.digest): \(error)")
        }
        if let tag { markChecked(route, tag) }
        logger.info("proxied manifest", metadata: ["image": "\(route.local)", "reference": "\(reference)", "digest": "\(content.digest)"])
    }

    public func referrers(_ route: PullThroughRoute, of digest: Digest) async throws -> [UInt8]? {
        do {
            return try await client(route).referrers(route.remote, of: digest)
        } catch let error as SyncError {
            throw Self.map(error)
        }
    }

    // MARK: Blobs

    public func blobSize(_ route: PullThroughRoute, digest: Digest) async throws -> Int64 {
        if let size = state.withLock({ $0.sizes["\(route.local)@\(digest)"] }) { return size }
        let client = try self.client(route)
        let answer: UpstreamClient.Fetched
        do {
            answer = try await client.fetch(
                "/v2/\(route.remote)/blobs/\(digest)", scope: "repository:\(route.remote):pull", method: "HEAD", limit: 0)
        } catch let error as SyncError {
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
        if let room = configuration.makeRoom {
            do { try room(digest, size) } catch {
                throw PullThroughError(.unavailable, "no room in the store's quota for blob \(digest) (\(ByteSize.format(size))): \(error)")
            }
        }
        let client = try self.client(route)
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
        let task = Task.detached { [self] in
            await self.run(blob, route: route, client: client)
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
    private func run(_ blob: GrowingBlob, route: PullThroughRoute, client: UpstreamClient) async {
        let digest = blob.digest
        let seen = Atomic<Int64>(-1)
        let counters = self.counters
        let transfer = BlobTransfer(source: client, store: store)
        do {
            try await transfer.download(
                digest, size: blob.size, repository: route.remote, deadline: MonotonicClock.now() + configuration.transferTimeout
            ) { offset in
                let previous = seen.exchange(offset, ordering: .relaxed)
                if previous >= 0, offset > previous { counters.bytes.wrappingAdd(offset - previous, ordering: .relaxed) }
                blob.advance(to: offset)
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

    static func map(_ error: SyncError) -> PullThroughError {
        switch error.kind {
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
            + counter("satellite_proxy_fetched_bytes_total", "Blob bytes the proxy fetched from upstreams.", counters.bytes.load(ordering: .relaxed))
            + counter("satellite_proxy_coalesced_waiters_total", "Clients that joined a proxied transfer already running.", counters.coalesced.load(ordering: .relaxed))
            + counter("satellite_proxy_failures_total", "Proxied fetches that failed.", counters.failures.load(ordering: .relaxed))
            + counter("satellite_proxy_transfers_total", "Upstream blob transfers the proxy started.", counters.transfers.load(ordering: .relaxed))
            + "# HELP satellite_proxy_transfers_running Proxied blob transfers in progress.\n# TYPE satellite_proxy_transfers_running gauge\nsatellite_proxy_transfers_running \(running)\n"
    }
}
