import FoundationEssentials
import Logging
import Synchronization
import TinyRegistry

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reconciles the store with the desired state: one pass resolves every wanted image on the
/// upstream, downloads the blobs the store lacks (resuming partial ones), and only then makes
/// each manifest visible and moves its tag. Tags the engine placed that are no longer wanted
/// are removed. One image failing never stops the others.
public final class SyncEngine: Sendable {
    public struct Configuration: Sendable {
        public var source: DesiredStateSource
        /// The platform kept from multi-arch indexes; nil keeps every platform.
        public var platform: Platform?
        public var concurrency: Int
        /// How long one pass keeps retrying a broken link before it gives up (nanoseconds).
        public var timeout: Int64

        public init(source: DesiredStateSource, platform: Platform?, concurrency: Int, timeout: Int64) {
            self.source = source
            self.platform = platform
            self.concurrency = concurrency
            self.timeout = timeout
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

        public var complete: Bool { failures.isEmpty && present == wanted }
    }

    public let configuration: Configuration
    public let store: BlobStore
    public let client: UpstreamClient
    private let events: (any SyncEventSink)?
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

    public init(configuration: Configuration, store: BlobStore, client: UpstreamClient, events: (any SyncEventSink)?, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.client = client
        self.events = events
        self.logger = logger
    }

    /// Runs one reconcile pass while holding the store's sync lock (a second sync process
    /// waits for it).
    public func runPass() async -> Report {
        let lock: SyncLock
        do {
            lock = try SyncLock.acquire(store: store, logger: logger)
        } catch {
            var report = Report()
            report.failures.append(("(store)", "\(error)"))
            return report
        }
        defer { lock.release() }
        do {
            try events?.recover { event in
                guard let repository = RepositoryName(event.repository) else { return false }
                let current = store.resolveTag(repository, event.tag)?.description
                return event.kind == .imageRemoved ? current != event.digest : current == event.digest
            }
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
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
                writeStatus(running: true, report: nil)
            }
        }
        let bytesBefore = client.bytesReceived
        var report = await reconcile()
        writer.cancel()
        report.bytesDownloaded = client.bytesReceived - bytesBefore
        writeStatus(running: false, report: report)
        let event = SyncEvent(
            kind: report.complete ? .syncCompleted : .syncFailed,
            message: report.failures.first.map { "\($0.image): \($0.error)" }
                ?? "\(report.present)/\(report.wanted) images present")
        try? events?.record(event)
        return report
    }

    private func writeStatus(running: Bool, report: Report?) {
        var status = SyncStatus.read(store: store) ?? SyncStatus()
        status.running = running
        status.pid = running ? getpid() : nil
        let now = BandwidthLimiter.now()
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
            wanted = try await configuration.source.resolve(client: client)
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
        let deadline = BandwidthLimiter.now() + configuration.timeout
        var managed = ManagedTags.read(store: store)
        for image in wanted {
            if Task.isCancelled { break }
            setState(image.description, "syncing")
            do {
                let outcome = try await sync(image, deadline: deadline, managed: &managed)
                report.present += 1
                if outcome.updated { report.updated.append(image.description) }
                setState(image.description, "present", digest: outcome.digest.description)
            } catch {
                logger.error("image failed", metadata: ["image": "\(image)", "error": "\(error)"])
                report.failures.append((image.description, "\(error)"))
                setState(image.description, "failed", error: "\(error)")
            }
        }
        // Tags this engine placed that nobody wants any more.
        let wantedTags = Set(wanted.compactMap { image in image.tag.map { "\(image.repository):\($0)" } })
        for (key, digest) in managed.tags.sorted(by: { $0.key < $1.key }) where !wantedTags.contains(key) {
            guard let colon = key.lastIndex(of: ":"), let repository = RepositoryName(key[..<colon]) else { continue }
            let tag = String(key[key.index(after: colon)...])
            do {
                if store.resolveTag(repository, tag)?.description == digest {
                    let token = try events?.prepare(
                        SyncEvent(kind: .imageRemoved, repository: repository.value, tag: tag, digest: digest))
                    do {
                        _ = try store.deleteTag(repository, tag)
                    } catch {
                        if let token { events?.abandon(token) }
                        throw error
                    }
                    if let token { try events?.commit(token) }
                }
                managed.tags[key] = nil
                try managed.write(store: store)
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

    /// Brings one image into the store: manifest (and the profile's platform of an index),
    /// then every blob, then the visible manifest and tag.
    private func sync(_ image: ImageReference, deadline: Int64, managed: inout ManagedTags) async throws -> Outcome {
        let fetcher = ManifestFetcher(client: client)
        let repository = image.repository
        let top = try await fetchWithRetry(deadline: deadline) {
            try await fetcher.fetch(repository, reference: image.digest.map { .digest($0) } ?? .tag(image.tag ?? "latest"))
        }
        var children: [ManifestFetcher.Fetched] = []
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
                    try await fetcher.fetch(repository, reference: .digest(digest))
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
        try await download(blobs.filter { !store.hasBlob($0.0) }, repository: repository, deadline: deadline)

        // Everything is here and verified: make it visible, children before the index, the
        // tag last.
        do {
            for (digest, _) in blobs { try store.linkBlob(digest, into: repository) }
            for child in children where child.digest != top.digest {
                try store.putBlob(child.bytes, algorithm: child.digest.algorithm)
                try store.linkManifest(child.digest, mediaType: child.mediaType, into: repository)
            }
            try store.putBlob(top.bytes, algorithm: top.digest.algorithm)
            try store.linkManifest(top.digest, mediaType: top.mediaType, into: repository)
        } catch {
            throw SyncError(.storage, "\(image): cannot store: \(error)")
        }
        var updated = false
        if let tag = image.tag {
            let previous = store.resolveTag(repository, tag)
            let key = "\(repository):\(tag)"
            if previous != top.digest {
                let token: SyncEventToken?
                do {
                    token = try events?.prepare(
                        SyncEvent(
                            kind: .imageUpdated, repository: repository.value, tag: tag, digest: top.digest.description,
                            previousDigest: previous?.description ?? ""))
                } catch {
                    throw SyncError(.storage, "\(image): cannot journal the hook event: \(error)")
                }
                do {
                    try store.setTag(repository, tag, to: top.digest)
                } catch {
                    if let token { events?.abandon(token) }
                    throw SyncError(.storage, "\(image): cannot move the tag: \(error)")
                }
                if let token {
                    do {
                        try events?.commit(token)
                    } catch {
                        logger.error("hook event not committed", metadata: ["image": "\(key)", "error": "\(error)"])
                    }
                }
                updated = true
                logger.info("image updated", metadata: ["image": "\(key)", "digest": "\(top.digest)", "previous": "\(previous?.description ?? "none")"])
            }
            if managed.tags[key] != top.digest.description {
                managed.tags[key] = top.digest.description
                try? managed.write(store: store)
            }
        }
        return Outcome(digest: top.digest, updated: updated)
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
    private func fetchWithRetry<T>(deadline: Int64, _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let error as SyncError where error.isRetryable {
                attempt += 1
                let flag = CancelFlag()
                if Task.isCancelled { flag.set() }
                guard try Retry.wait(attempt: attempt, until: deadline, cancel: flag) else { throw error }
            }
        }
    }

    /// Downloads blobs with at most `concurrency` transfers at once.
    private func download(_ blobs: [(Digest, Int64)], repository: RepositoryName, deadline: Int64) async throws {
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
                            repository: repository.value, size: size, done: 0, startDone: -1, started: BandwidthLimiter.now())
                    }
                    defer { _ = progress.withLock { $0.removeValue(forKey: digest.description) } }
                    try await client.download(digest, size: size, repository: repository, into: store, retryUntil: deadline) { done in
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

/// The store's sync lock (`<store>/sync/lock`, flock): one reconcile pass at a time, across
/// processes. A second one waits and says so.
final class SyncLock: Sendable {
    private let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    static func acquire(store: BlobStore, logger: Logger) throws -> SyncLock {
        let directory = "\(store.root)/sync"
        try PosixFile.makeDirectories(directory)
        let path = "\(directory)/lock"
        let fd = try PosixFile.open(path, O_RDWR | O_CREAT)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? PosixFile.readAll(path: path, limit: 64)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
            logger.notice("another sync holds the store; waiting for it", metadata: ["pid": "\(holder)"])
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    PosixFile.close(fd)
                    throw PosixError("flock", path: path)
                }
            }
        }
        _ = ftruncate(fd, 0)
        let pid = Array(String(getpid()).utf8)
        pid.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, 0) }
        return SyncLock(fd: fd)
    }

    func release() {
        flock(fd, LOCK_UN)
        PosixFile.close(fd)
    }
}
