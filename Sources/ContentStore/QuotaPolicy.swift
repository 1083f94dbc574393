import Logging
import OCICore

/// How much the store may hold and how room is made: the quota, the online collection's
/// watermarks and what garbage collection may evict. Every caller that needs room (a sync
/// pass before it downloads, the run loop between passes, later a proxy or a bundle import)
/// goes through here.
public struct QuotaPolicy: Sendable {
    /// Bytes the store may occupy; nil is no limit.
    public var quota: Int64?
    /// Disk use, as a share of the quota, above which the run loop collects garbage.
    public var highWatermark: Double
    /// Disk use, as a share of the quota, the run loop's collection brings it down to.
    public var lowWatermark: Double
    /// What garbage collection may evict.
    public var gc: GarbageCollector.Policy

    public init(quota: Int64?, highWatermark: Double = 0.9, lowWatermark: Double = 0.8, gc: GarbageCollector.Policy = .init()) {
        self.quota = quota
        self.highWatermark = highWatermark
        self.lowWatermark = lowWatermark
        self.gc = gc
    }

    /// Room could not be made.
    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Frees cache space so that the blobs in `sizes` the store lacks fit under the quota;
    /// returns the bytes evicted. `roots` must name what is kept whatever the policy (the
    /// desired state and, in `blobs`, everything in `sizes`).
    ///
    /// Throws ``Error`` when the cache cannot give enough room without evicting what must be
    /// kept, or garbage collection cannot plan.
    public func makeRoom(store: BlobStore, for sizes: [Digest: Int64], roots: GarbageCollector.Roots, logger: Logger? = nil) throws -> Int64 {
        guard let quota else { return 0 }
        var missing: Int64 = 0
        for (digest, size) in sizes where !store.hasBlob(digest) {
            missing += max(0, size - store.partialDownloadSize(digest))
        }
        // The running figure answers the common case without a walk; eviction is decided on
        // an exact one (the figure may lag another process's changes by a little).
        var use = GarbageCollector.diskUse(store: store)
        guard use + missing > quota else { return 0 }
        use = GarbageCollector.diskUse(store: store, exact: true)
        guard use + missing > quota else { return 0 }
        var evicted: Int64 = 0
        // A sweep skips what was used after its plan (a pull racing it), so check the room
        // it made and plan again rather than download past the quota.
        for _ in 0..<3 {
            let plan: GarbageCollector.Plan
            do {
                plan = try GarbageCollector.plan(store: store, policy: gc, roots: roots)
            } catch {
                throw Error(description: "cannot plan garbage collection: \(error)")
            }
            let need = use + missing - quota
            guard plan.candidateBytes >= need else {
                throw Error(
                    description: "not enough room: \(ByteSize.format(missing)) to download, \(ByteSize.format(use)) used of \(ByteSize.format(quota)), "
                        + "and only \(ByteSize.format(plan.candidateBytes)) can be evicted without touching what must be kept")
            }
            let sweep = GarbageCollector.sweep(store: store, plan: plan, freeing: need)
            evicted += sweep.freedBytes
            logger?.info("evicted cached content to make room", metadata: ["bytes": "\(sweep.freedBytes)", "blobs": "\(sweep.removed.count)"])
            use = GarbageCollector.diskUse(store: store)
            if use + missing <= quota { return evicted }
        }
        throw Error(
            description: "not enough room: \(ByteSize.format(missing)) to download, \(ByteSize.format(use)) used of \(ByteSize.format(quota)); "
                + "cached content kept being used while it was evicted")
    }

    /// Online collection at the watermarks: above the high one, evicts unreferenced content
    /// (what the agent released first, then least recently used) until disk use is under the
    /// low one, holding the store's writer lock. Returns nil when under the high watermark.
    public func collectIfNeeded(store: BlobStore, roots: GarbageCollector.Roots, logger: Logger) async throws -> GarbageCollector.Sweep? {
        guard let quota, quota > 0 else { return nil }
        let use = GarbageCollector.diskUse(store: store)
        guard Double(use) > Double(quota) * highWatermark else { return nil }
        let lock = try await StoreLock.acquire(store: store, logger: logger)
        defer { lock.release() }
        let plan = try GarbageCollector.plan(store: store, policy: gc, roots: roots)
        let target = Int64(Double(quota) * lowWatermark)
        return GarbageCollector.sweep(store: store, plan: plan, freeing: use - target)
    }
}
