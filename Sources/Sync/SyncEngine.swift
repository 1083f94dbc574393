import Logging
import Synchronization
import ContentStore
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reconciles the store with the desired state: one pass resolves every wanted image on a
/// ``ContentSource`` (the upstream today), makes room under the quota, downloads the blobs
/// the store lacks through ``BlobTransfer`` (resuming partial ones), and only then makes each
/// image visible through the store's ``ImagePublisher``. Tags the engine placed that are no
/// longer wanted are removed, and their content released. One image failing never stops the
/// others.
public final class SyncEngine: Sendable {
    public struct Configuration: Sendable {
        public var source: DesiredStateSource
        /// The platform kept from multi-arch indexes; nil keeps every platform.
        public var platform: Platform?
        public var concurrency: Int
        /// How long one pass keeps retrying a broken link before it gives up (nanoseconds).
        public var timeout: Int64
        /// Bytes the store may occupy; nil is no limit.
        public var quota: Int64?
        /// What garbage collection may evict to make room.
        public var gcPolicy: GarbageCollector.Policy
        /// Repositories whose images need a signature (`trust.policies`): their cosign
        /// signatures are synced with them, before the image is published.
        public var signedRepositories: @Sendable (RepositoryName) -> Bool = { _ in false }

        public init(
            source: DesiredStateSource, platform: Platform?, concurrency: Int, timeout: Int64, quota: Int64? = nil,
            gcPolicy: GarbageCollector.Policy = .init()
        ) {
            self.source = source
            self.platform = platform
            self.concurrency = concurrency
            self.timeout = timeout
            self.quota = quota
            self.gcPolicy = gcPolicy
        }
    }

    /// os / architecture / variant to select from an index.
    public struct Platform: Sendable, Equatable {
        public var os: String
        public var architecture: String
        public var variant: String?

        public init(os: String, architecture: String, variant: String?) {
            self.os = os
            self.architecture = architecture
            self.variant = variant
        }
    }

    /// The outcome of a pass.
    public struct Report: Sendable {
        public var wanted: Int = 0
        public var present: Int = 0
        public var failures: [(image: String, error: String)] = []
        public var updated: [String] = []
        public var removed: [String] = []
        public var bytesDownloaded: Int64 = 0
        /// Bytes evicted from the cache to make room.
        public var bytesEvicted: Int64 = 0
        /// The state artifact this pass followed, when the desired state is one.
        public var artifact: ResolvedArtifact?

        public var complete: Bool { failures.isEmpty && present == wanted }
    }

    public let configuration: Configuration
    public let store: BlobStore
    /// Where content comes from.
    public let content: any ContentSource
    /// The one step that makes content visible.
    public let publisher: ImagePublisher
    private let transfer: BlobTransfer
    private let logger: Logger
    private let progress = Mutex<[String: TransferProgress]>([:])
    private let imageStates = Mutex<[String: SyncStatus.Image]>([:])

    struct TransferProgress {
        var repository: String
        var size: Int64
        var done: Int64
        var startDone: Int64
        var started: Int64
    }

    public init(
        configuration: Configuration, store: BlobStore, content: any ContentSource, events: (any SyncEventSink)?,
        policy: any PublishPolicy = AcceptAllPolicy(), logger: Logger
    ) {
        self.configuration = configuration
        self.store = store
        self.content = content
        self.publisher = ImagePublisher(store: store, policy: policy, events: events, logger: logger)
        self.transfer = BlobTransfer(source: content, store: store)
        self.logger = logger
    }

    /// Body bytes received from the source so far (all passes of this engine).
    public var bytesReceived: Int64 { content.bytesReceived }
    /// Blob transfers that continued a partial download instead of starting over.
    public var resumeCount: Int64 { transfer.resumeCount }

    /// The store's quota policy for this engine's configuration.
    var quotaPolicy: QuotaPolicy { QuotaPolicy(quota: configuration.quota, gc: configuration.gcPolicy) }

    /// Runs one reconcile pass while holding the store's sync lock (a second sync process
    /// waits for it).
    public func runPass() async -> Report {
        let lock: StoreLock
        do {
            lock = try await StoreLock.acquire(store: store, logger: logger)
        } catch {
            var report = Report()
            report.failures.append(("(store)", "\(error)"))
            return report
        }
        defer { lock.release() }
        do {
            try publisher.recoverEvents()
        } catch {
            logger.error("cannot settle the hook events of an interrupted pass", metadata: ["error": "\(error)"])
        }
        let started = Int64(time(nil))
        var status = SyncStatus.read(store: store) ?? SyncStatus()
        status.running = true
        status.pid = getpid()
        status.lastSyncStarted = started
        status.transfers = []
        status.write(store: store)

        let writer = Task { [self] in
            while true {
                // A cancelled sleep ends the loop: writing "running" after the final
                // status would leave `status` saying a sync runs until the next pass.
                do { try await Task.sleep(nanoseconds: 1_000_000_000) } catch { return }
                writeStatus(running: true, report: nil)
            }
        }
        let bytesBefore = content.bytesReceived
        var report = await reconcile()
        writer.cancel()
        await writer.value
        report.bytesDownloaded = content.bytesReceived - bytesBefore
        writeStatus(running: false, report: report)
        let event = SyncEvent(
            kind: report.complete ? .syncCompleted : .syncFailed,
            message: report.failures.first.map { "\($0.image): \($0.error)" }
                ?? "\(report.present)/\(report.wanted) images present")
        try? publisher.events?.record(event)
        return report
    }

    private func writeStatus(running: Bool, report: Report?) {
        var status = SyncStatus.read(store: store) ?? SyncStatus()
        status.running = running
        status.pid = running ? getpid() : nil
        let now = MonotonicClock.now()
        status.transfers = progress.withLock { transfers in
            transfers.map { digest, t in
                let seconds = max(0.001, Double(now - t.started) / 1e9)
                let rate = Int64(Double(t.done - t.startDone) / seconds)
                let eta = rate > 0 ? (t.size - t.done) / rate : nil
                return SyncStatus.Transfer(repository: t.repository, digest: digest, size: t.size, done: t.done, rate: rate, eta: eta)
            }.sorted { $0.digest < $1.digest }
        }
        status.images = imageStates.withLock { Array($0.values) }.sorted { $0.image < $1.image }
        if let report {
            status.lastSyncFinished = Int64(time(nil))
            status.lastSyncOK = report.complete
            status.lastSyncError = report.failures.first.map { "\($0.image): \($0.error)" }
        }
        status.write(store: store)
    }

    private func setState(_ image: String, _ state: String, digest: String? = nil, error: String? = nil) {
        imageStates.withLock { $0[image] = SyncStatus.Image(image: image, state: state, digest: digest, error: error) }
    }

    private func reconcile() async -> Report {
        var report = Report()
        let wanted: [ImageReference]
        do {
            (wanted, report.artifact) = try await configuration.source.resolveWithArtifact(content: content)
        } catch {
            logger.error("cannot read the desired state", metadata: ["error": "\(error)"])
            report.failures.append(("(desired state)", "\(error)"))
            return report
        }
        report.wanted = wanted.count
        imageStates.withLock { states in
            states = [:]
            for image in wanted { states[image.description] = .init(image: image.description, state: "missing") }
        }
        let deadline = MonotonicClock.now() + configuration.timeout
        let managed = ManagedTags.read(store: store)
        // Phase 1: resolve every image, so the pass knows what it needs before it downloads.
        var plans: [ImagePlan] = []
        for image in wanted {
            if Task.isCancelled { break }
            setState(image.description, "syncing")
            do {
                plans.append(try await resolve(image, deadline: deadline))
            } catch {
                logger.error("image failed", metadata: ["image": "\(image)", "error": "\(error)"])
                report.failures.append((image.description, "\(error)"))
                setState(image.description, "failed", error: "\(error)")
            }
        }
        // The quota: the desired state must fit; room for what is missing comes from the cache.
        if let quota = configuration.quota {
            do {
                report.bytesEvicted = try makeRoom(plans, wanted: wanted, quota: quota, managed: managed)
            } catch {
                logger.error("desired state does not fit", metadata: ["error": "\(error)"])
                for plan in plans {
                    report.failures.append((plan.image.description, "\(error)"))
                    setState(plan.image.description, "failed", error: "\(error)")
                }
                plans = []
            }
        }
        // Phase 2: download and commit image by image; one failing never blocks the others.
        for plan in plans {
            if Task.isCancelled { break }
            do {
                let outcome = try await complete(plan, deadline: deadline)
                report.present += 1
                if outcome.updated { report.updated.append(plan.image.description) }
                setState(plan.image.description, "present", digest: outcome.digest.description)
            } catch {
                logger.error("image failed", metadata: ["image": "\(plan.image)", "error": "\(error)"])
                report.failures.append((plan.image.description, "\(error)"))
                setState(plan.image.description, "failed", error: "\(error)")
            }
        }
        // Tags this engine placed that nobody wants any more.
        let wantedTags = Set(wanted.compactMap { image in image.tag.map { "\(image.repository):\($0)" } })
        for key in managed.tags.keys.sorted() where !wantedTags.contains(key) {
            do {
                try publisher.unpublish(managedTag: key)
                report.removed.append(key)
                logger.info("tag removed", metadata: ["image": "\(key)"])
            } catch {
                report.failures.append((key, "cannot remove: \(error)"))
            }
        }
        return report
    }

    struct Outcome {
        var digest: Digest
        var updated: Bool
    }

    /// An image resolved on the upstream: its manifests and the blobs they need.
    struct ImagePlan {
        var image: ImageReference
        var top: ImagePublisher.ManifestContent
        var children: [ImagePublisher.ManifestContent]
        var blobs: [(Digest, Int64)]

        var bytes: Int64 { blobs.reduce(Int64(top.bytes.count)) { $0 + $1.1 } + children.reduce(0) { $0 + Int64($1.bytes.count) } }
    }

    /// Resolves one image: its manifest, the profile's platform of an index, and its blobs.
    func resolve(_ image: ImageReference, deadline: Int64) async throws -> ImagePlan {
        let repository = image.repository
        let top: ImagePublisher.ManifestContent
        if let local = try await unchangedLocalManifest(image, deadline: deadline) {
            top = local
        } else {
            top = try await fetchWithRetry(deadline: deadline) {
                try await content.manifest(repository, reference: image.digest.map { .digest($0) } ?? .tag(image.tag ?? "latest"))
            }
        }
        var children: [ImagePublisher.ManifestContent] = []
        if top.manifest.isIndex {
            let selected = try selectPlatforms(top.manifest.manifests ?? [], image: image)
            for descriptor in selected {
                guard let digest = Digest(descriptor.digest) else { continue }
                if store.manifestMediaType(repository, digest) != nil, let bytes = try? store.readBlob(digest, limit: Manifest.maxSize),
                    let manifest = try? Manifest.parse(bytes)
                {
                    children.append(.init(digest: digest, mediaType: descriptor.mediaType, bytes: bytes, manifest: manifest))
                    continue
                }
                let child = try await fetchWithRetry(deadline: deadline) {
                    try await content.manifest(repository, reference: .digest(digest))
                }
                guard !child.manifest.isIndex else {
                    throw SyncError(.corrupt, "\(image): nested index \(digest) is not supported")
                }
                children.append(child)
            }
        } else {
            children = [top]
        }
        // Every blob the manifests need, once.
        var blobs: [(Digest, Int64)] = []
        var seen = Set<Digest>()
        for child in children {
            for descriptor in [child.manifest.config].compactMap({ $0 }) + (child.manifest.layers ?? []) {
                if MediaType.isNonDistributable(descriptor.mediaType) || !(descriptor.urls ?? []).isEmpty { continue }
                guard let digest = Digest(descriptor.digest) else {
                    throw SyncError(.corrupt, "\(image): invalid blob digest \(descriptor.digest)")
                }
                if seen.insert(digest).inserted { blobs.append((digest, descriptor.size)) }
            }
        }
        return ImagePlan(image: image, top: top, children: children, blobs: blobs)
    }

    /// Frees cache space for what the plans still need; returns the bytes evicted.
    ///
    /// Throws ``SyncError`` naming every image and its size when the desired state alone
    /// exceeds the quota, or when the cache cannot give enough room without evicting what
    /// must be kept.
    private func makeRoom(_ plans: [ImagePlan], wanted: [ImageReference], quota: Int64, managed: ManagedTags) throws -> Int64 {
        var sizes: [Digest: Int64] = [:]
        for plan in plans {
            sizes[plan.top.digest] = Int64(plan.top.bytes.count)
            for child in plan.children { sizes[child.digest] = Int64(child.bytes.count) }
            for (digest, size) in plan.blobs { sizes[digest] = size }
        }
        let desired = sizes.values.reduce(0, +)
        if desired > quota {
            let list = plans.map { "\($0.image) (\(ByteSize.format($0.bytes)))" }.joined(separator: ", ")
            throw SyncError(
                .storage, "the desired state needs \(ByteSize.format(desired)) but the quota is \(ByteSize.format(quota)): \(list)")
        }
        let wantedTags = Set(wanted.compactMap { image in image.tag.map { "\(image.repository):\($0)" } })
        let roots = GarbageCollector.Roots(
            tags: wantedTags,
            digests: wanted.compactMap { image in image.digest.map { (image.repository, $0) } }
                + plans.map { ($0.image.repository, $0.top.digest) },
            released: Set(managed.tags.keys).subtracting(wantedTags),
            blobs: Set(sizes.keys))
        do {
            return try quotaPolicy.makeRoom(store: store, for: sizes, roots: roots, logger: logger)
        } catch let error as QuotaPolicy.Error {
            throw SyncError(.storage, error.description)
        }
    }

    /// Downloads what the image lacks, then makes it visible through the publish step:
    /// children before the index, the tag last.
    private func complete(_ plan: ImagePlan, deadline: Int64) async throws -> Outcome {
        let image = plan.image
        try await download(plan.blobs.filter { !store.hasBlob($0.0) }, repository: image.repository, deadline: deadline)
        if configuration.signedRepositories(image.repository) {
            try await syncSignatures(of: plan.top.digest, repository: image.repository, deadline: deadline)
        }
        do {
            let outcome = try publisher.publish(
                ImagePublisher.Image(
                    repository: image.repository, tags: image.tag.map { [$0] } ?? [], top: plan.top, children: plan.children,
                    blobs: plan.blobs.map(\.0), origin: .sync))
            return Outcome(digest: outcome.digest, updated: outcome.updated)
        } catch let error as ImagePublisher.Error {
            throw SyncError(.storage, "\(image): \(error)")
        }
    }

    /// The stored manifest when the upstream still has the same one: a digest-pinned image
    /// already here, or a tag whose HEAD announces the digest the local tag holds. Saves
    /// the manifest bytes on every pass over a metered link.
    private func unchangedLocalManifest(_ image: ImageReference, deadline: Int64) async throws -> ImagePublisher.ManifestContent? {
        let repository = image.repository
        let local: Digest
        if let pinned = image.digest {
            local = pinned
        } else if let tag = image.tag, let tagged = store.resolveTag(repository, tag) {
            let announced = try await fetchWithRetry(deadline: deadline) { try await content.manifestDigest(repository, tag: tag) }
            guard announced == tagged else { return nil }
            local = tagged
        } else {
            return nil
        }
        guard let mediaType = store.manifestMediaType(repository, local),
            let bytes = try? store.readBlob(local, limit: Manifest.maxSize),
            ContentHasher.digest(of: bytes, algorithm: local.algorithm) == local,
            let manifest = try? Manifest.parse(bytes)
        else { return nil }
        return ImagePublisher.ManifestContent(digest: local, mediaType: mediaType, bytes: bytes, manifest: manifest)
    }

    /// The index entries the profile's platform needs (all of them without a platform).
    private func selectPlatforms(_ descriptors: [Descriptor], image: ImageReference) throws -> [Descriptor] {
        guard let platform = configuration.platform else {
            return descriptors.filter { $0.platform?.os != "unknown" }
        }
        let candidates = descriptors.filter { d in
            guard let p = d.platform else { return false }
            return p.os == platform.os && p.architecture == platform.architecture
        }
        if let variant = platform.variant {
            if let exact = candidates.first(where: { $0.platform?.variant == variant }) { return [exact] }
            // arm64 images often omit the "v8" variant.
            if let plain = candidates.first(where: { $0.platform?.variant == nil }), variant == "v8" { return [plain] }
        } else if let plain = candidates.first {
            return [plain]
        }
        let offered = descriptors.compactMap { d in d.platform.map { [$0.os, $0.architecture, $0.variant].compactMap { $0 }.joined(separator: "/") } }
        let wanted = [platform.os, platform.architecture, platform.variant].compactMap { $0 }.joined(separator: "/")
        throw SyncError(.notFound, "\(image) has no \(wanted) manifest (it offers \(offered.joined(separator: ", ")))")
    }

    /// Retries a small request while the link is broken, until the pass deadline.
    func fetchWithRetry<T>(deadline: Int64, _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as SyncError where error.isRetryable {
                attempt += 1
                guard try await Retry.wait(attempt: attempt, until: deadline) else { throw error }
            }
        }
    }

    /// Downloads blobs with at most `concurrency` transfers at once.
    func download(_ blobs: [(Digest, Int64)], repository: RepositoryName, deadline: Int64) async throws {
        guard !blobs.isEmpty else { return }
        let limit = max(1, configuration.concurrency)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var iterator = blobs.makeIterator()
            var running = 0
            func startNext() -> Bool {
                guard let (digest, size) = iterator.next() else { return false }
                group.addTask { [self] in
                    progress.withLock {
                        $0[digest.description] = TransferProgress(
                            repository: repository.value, size: size, done: 0, startDone: -1, started: MonotonicClock.now())
                    }
                    defer { _ = progress.withLock { $0.removeValue(forKey: digest.description) } }
                    try await transfer.download(digest, size: size, repository: repository, deadline: deadline) { done in
                        self.progress.withLock { transfers in
                            guard var t = transfers[digest.description] else { return }
                            if t.startDone < 0 { t.startDone = done }
                            t.done = done
                            transfers[digest.description] = t
                        }
                    }
                }
                return true
            }
            while running < limit, startNext() { running += 1 }
            while try await group.next() != nil {
                running -= 1
                if startNext() { running += 1 }
            }
        }
    }
}

