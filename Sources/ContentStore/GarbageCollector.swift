#if canImport(Glibc)
import OCICore
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Mark and sweep over the store, online: what tags (and pinned digests) reach is live; the
/// rest is a cache evicted least-recently-used first. Content of unknown origin goes only
/// once it has been untouched for the grace period (a push in progress, a pull that just
/// read the manifest, a blob a sync just fetched are all "touched"). Content the agent
/// itself released (``ManagedTags/released``: a tag it moved on or removed) goes at once,
/// first, unless a client read it within ``Policy/releasedReadWindow``.
///
/// Readers are never locked out: a blob being served stays readable through its open file
/// even after it is unlinked.
public enum GarbageCollector {
    public struct Policy: Sendable {
        /// Tags pushed by users count as roots (default). When false only `Roots.tags` do.
        public var keepPushedTags: Bool
        /// Seconds a blob must be untouched (written, linked, served) before it may go.
        public var gracePeriod: Int64

        /// Seconds since its last read within which content the agent released is still kept:
        /// a pull that read its manifest a moment ago may still fetch its layers (a layer
        /// being served stays readable through its open file whatever happens). Short, so
        /// that a tag updated every few seconds while clients pull it cannot pin every
        /// superseded version. A read in another process counts once that process flushed
        /// its log (``AccessLog/flushDelay``); `run` syncs and serves in one process.
        public var releasedReadWindow: Int64

        public init(keepPushedTags: Bool = true, gracePeriod: Int64 = 600, releasedReadWindow: Int64 = 10) {
            self.keepPushedTags = keepPushedTags
            self.gracePeriod = gracePeriod
            self.releasedReadWindow = releasedReadWindow
        }
    }

    /// What must be kept whatever the policy: the desired state.
    public struct Roots: Sendable {
        /// `repository:tag`.
        public var tags: Set<String>
        /// Manifests pinned by digest, as (repository, digest).
        public var digests: [(RepositoryName, Digest)]

        /// `repository:tag` that are not roots even when pushed tags are kept: tags a sync
        /// pass is about to remove because they left the desired state, whose room the new
        /// desired state may need.
        public var released: Set<String>

        /// Blobs to keep whatever references them: what a sync pass is about to use, even
        /// where the manifest that names them is not stored yet.
        public var blobs: Set<Digest>

        public init(
            tags: Set<String> = [], digests: [(RepositoryName, Digest)] = [], released: Set<String> = [], blobs: Set<Digest> = []
        ) {
            self.tags = tags
            self.digests = digests
            self.released = released
            self.blobs = blobs
        }
    }

    public struct Candidate: Sendable {
        public var digest: Digest
        public var size: Int64
        /// Seconds since the epoch of the last use known.
        public var lastUsed: Int64
        /// Content the agent released (evicted before the rest, without a grace period).
        public var released: Bool = false
    }

    public struct Plan: Sendable {
        public var live: Set<Digest> = []
        public var liveBytes: Int64 = 0
        /// Unreferenced blobs past the grace period, least recently used first.
        public var candidates: [Candidate] = []
        /// Unreferenced blobs still inside the grace period.
        public var youngBytes: Int64 = 0
        /// Candidates the agent released (part of ``candidates``).
        public var releasedBytes: Int64 = 0
        public var totalBytes: Int64 = 0
        /// Each unreferenced manifest with the candidates it reaches (itself included): the
        /// cached images a partial sweep must not leave half evicted.
        public var images: [Digest: Set<Digest>] = [:]

        public var candidateBytes: Int64 { candidates.reduce(0) { $0 + $1.size } }
    }

    /// Marks what is live and lists what could go.
    public static func plan(store: BlobStore, policy: Policy, roots: Roots) throws -> Plan {
        var plan = Plan()
        var visited = Set<String>()
        func mark(_ repository: RepositoryName, _ digest: Digest) {
            guard visited.insert("\(repository)@\(digest)").inserted else { return }
            plan.live.insert(digest)
            guard let bytes = try? store.readBlob(digest, limit: Manifest.maxSize), let manifest = try? Manifest.parse(bytes)
            else { return }
            for descriptor in [manifest.config].compactMap({ $0 }) + (manifest.layers ?? []) {
                if let blob = Digest(descriptor.digest) { plan.live.insert(blob) }
            }
            for child in manifest.manifests ?? [] {
                if let childDigest = Digest(child.digest) { mark(repository, childDigest) }
            }
            for (referrer, _) in (try? store.referrers(of: digest, in: repository)) ?? [] {
                mark(repository, referrer)
            }
        }
        // Tags the pull-through proxy published are cache, never roots: their images are
        // evicted least recently used first like any unreferenced content.
        let proxied = ManagedTags.read(store: store).proxied ?? [:]
        for repository in try store.repositories() {
            for tag in try store.tags(repository) {
                let key = "\(repository):\(tag)"
                let pushed = policy.keepPushedTags && !roots.released.contains(key) && proxied[key] == nil
                guard roots.tags.contains(key) || pushed else { continue }
                if let digest = store.resolveTag(repository, tag) { mark(repository, digest) }
            }
        }
        for (repository, digest) in roots.digests { mark(repository, digest) }
        plan.live.formUnion(roots.blobs)

        let released = releasedContent(store: store, roots: roots).subtracting(plan.live)
        let used = store.access.snapshot()
        let reads = released.isEmpty ? [:] : store.reads.snapshot()
        let now = MonotonicClock.wallSeconds()
        for digest in try store.allBlobs() {
            guard let status = try? PosixFile.status(store.blobPath(digest)) else { continue }
            plan.totalBytes += status.size
            if plan.live.contains(digest) {
                plan.liveBytes += status.size
                continue
            }
            let lastUsed = max(status.modified, used[digest] ?? 0)
            if released.contains(digest), now - (reads[digest] ?? 0) >= policy.releasedReadWindow {
                plan.candidates.append(Candidate(digest: digest, size: status.size, lastUsed: lastUsed, released: true))
                plan.releasedBytes += status.size
            } else if now - lastUsed < policy.gracePeriod {
                plan.youngBytes += status.size
            } else {
                plan.candidates.append(Candidate(digest: digest, size: status.size, lastUsed: lastUsed))
            }
        }
        plan.images = applyImageRecency(store: store, &plan.candidates)
        plan.candidates.sort { ($0.released ? 0 : 1, $0.lastUsed, $0.digest) < ($1.released ? 0 : 1, $1.lastUsed, $1.digest) }
        return plan
    }

    /// Everything the manifests the agent released reach (themselves included): those in
    /// ``ManagedTags/released`` and those the tags in ``Roots/released`` point at.
    static func releasedContent(store: BlobStore, roots: Roots) -> Set<Digest> {
        var manifests = ManagedTags.read(store: store).releasedManifests
        for key in roots.released {
            guard let colon = key.lastIndex(of: ":"), let repository = RepositoryName(key[..<colon]),
                let digest = store.resolveTag(repository, String(key[key.index(after: colon)...]))
            else { continue }
            manifests.insert(digest)
        }
        var content = Set<Digest>()
        for manifest in manifests where store.hasBlob(manifest) {
            content.formUnion(Verifier.closure(store: store, manifest))
        }
        return content
    }

    /// A cached image is as recent as the most recently used of its own parts (manifest,
    /// config, layers no other cached image has), and all its parts take that time, so that
    /// eviction takes whole images least recently used first: a sync links (and so touches)
    /// an image's config and layers but not its manifest, and a client that already holds
    /// the layers only fetches the manifest. A part several cached images share takes the
    /// newest of their times: it goes with the last of them.
    ///
    /// Returns the cached images (manifests not inside another cached manifest, such as an
    /// index's children) with their candidate parts.
    @discardableResult
    static func applyImageRecency(store: BlobStore, _ candidates: inout [Candidate]) -> [Digest: Set<Digest>] {
        guard !candidates.isEmpty else { return [:] }
        var raw: [Digest: Int64] = [:]
        for candidate in candidates { raw[candidate.digest] = candidate.lastUsed }
        var closures: [Digest: Set<Digest>] = [:]
        for repository in (try? store.repositories()) ?? [] {
            for manifest in (try? store.manifests(repository)) ?? [] where raw[manifest] != nil && closures[manifest] == nil {
                closures[manifest] = Verifier.closure(store: store, manifest).filter { raw[$0] != nil }
            }
        }
        var children = Set<Digest>()
        for (manifest, members) in closures {
            for member in members where member != manifest && closures[member] != nil { children.insert(member) }
        }
        let images = closures.filter { !children.contains($0.key) }
        var owners: [Digest: Int] = [:]
        for members in images.values {
            for member in members { owners[member, default: 0] += 1 }
        }
        var effective: [Digest: Int64] = [:]
        for members in images.values {
            let own = members.filter { owners[$0] == 1 }.compactMap { raw[$0] }
            let time = own.max() ?? members.compactMap { raw[$0] }.max() ?? 0
            for member in members { effective[member] = max(effective[member] ?? .min, time) }
        }
        for index in candidates.indices {
            candidates[index].lastUsed = effective[candidates[index].digest] ?? candidates[index].lastUsed
        }
        return images
    }

    public struct Sweep: Sendable {
        public var removed: [Candidate] = []
        public var freedBytes: Int64 = 0
    }

    /// Removes candidates in LRU order until `bytes` are freed (all of them when nil), then
    /// finishes every cached image it started on, and drops the repository links that
    /// pointed at what went.
    @discardableResult
    public static func sweep(store: BlobStore, plan: Plan, freeing bytes: Int64? = nil) -> Sweep {
        var sweep = Sweep()
        func remove(_ candidate: Candidate) -> Bool {
            // Used again since the plan was made (a pull, a mount): keep it.
            if let used = store.access.lastUse(candidate.digest), used > candidate.lastUsed { return false }
            guard (try? store.removeBlob(candidate.digest)) != nil else { return false }
            sweep.removed.append(candidate)
            sweep.freedBytes += candidate.size
            return true
        }
        for candidate in plan.candidates {
            if let bytes, sweep.freedBytes >= bytes { break }
            _ = remove(candidate)
        }
        if bytes != nil { finishImages(plan: plan, removed: Set(sweep.removed.map(\.digest)), remove: remove) }
        if !sweep.removed.isEmpty {
            pruneLinks(store: store, removed: Set(sweep.removed.map(\.digest)))
            store.access.flush(forgetting: Set(sweep.removed.map(\.digest)))
        }
        return sweep
    }

    /// A partial sweep stops at a byte count, which can fall inside an image: a manifest gone
    /// with its layers left (dead weight), or a layer gone under a manifest still listed (a
    /// pull that fails halfway). Every image that lost a part loses all of its parts that
    /// no intact image needs, until nothing changes.
    private static func finishImages(plan: Plan, removed: Set<Digest>, remove: (Candidate) -> Bool) {
        var removed = removed
        guard !removed.isEmpty, !plan.images.isEmpty else { return }
        let candidates = Dictionary(plan.candidates.map { ($0.digest, $0) }, uniquingKeysWith: { first, _ in first })
        var changed = true
        while changed {
            changed = false
            let broken = plan.images.filter { !$0.value.isDisjoint(with: removed) }
            guard !broken.isEmpty else { return }
            var needed = Set<Digest>()
            for (manifest, members) in plan.images where broken[manifest] == nil { needed.formUnion(members) }
            for (_, members) in broken {
                for member in members where !removed.contains(member) && !needed.contains(member) {
                    if let candidate = candidates[member], remove(candidate) {
                        removed.insert(member)
                        changed = true
                    }
                }
            }
        }
    }

    /// Deletes revision, layer and referrer links to blobs that are gone, so listings stay
    /// consistent with what can be served.
    static func pruneLinks(store: BlobStore, removed: Set<Digest>) {
        for repository in (try? store.repositories()) ?? [] {
            for digest in (try? store.manifests(repository)) ?? [] where removed.contains(digest) {
                _ = try? store.unlinkManifest(digest, from: repository)
            }
            for digest in (try? store.linkedBlobs(repository)) ?? [] where removed.contains(digest) {
                _ = try? store.unlinkBlob(digest, from: repository)
            }
        }
    }

    /// Bytes the store occupies: blobs, partial downloads and uploads in progress.
    ///
    /// The blobs' part is the store's running figure (``StoreUsage``: no walk unless it may
    /// be stale); `exact` walks them now. Downloads and uploads in progress are listed each
    /// time (a handful of files, whatever the store's size).
    public static func diskUse(store: BlobStore, exact: Bool = false) -> Int64 {
        var total: Int64 = exact ? store.usage.refresh() : store.usage.blobBytes()
        let layout = store.layout
        for name in (try? PosixFile.list(layout.ingest)) ?? [] {
            total += (try? PosixFile.status("\(layout.ingest)/\(name)").size) ?? 0
        }
        for id in (try? PosixFile.list(layout.uploads)) ?? [] {
            total += (try? PosixFile.status("\(layout.upload(id))/data").size) ?? 0
        }
        return total
    }

    /// Size of the filesystem holding the store, for quotas given as a share.
    public static func filesystemSize(store: BlobStore) -> Int64 {
        var info = statvfs()
        guard statvfs(store.root, &info) == 0 else { return 0 }
        return Int64(info.f_blocks) * Int64(info.f_frsize)
    }
}
