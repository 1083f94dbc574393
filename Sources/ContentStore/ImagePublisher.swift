import JSONCoding
import Logging
import OCICore
import Synchronization

/// Decides whether an image may become visible: the trust policy's place. Runs after every
/// blob and manifest is stored and verified, before any tag moves.
public protocol PublishPolicy: Sendable {
    /// Throws ``ImagePublisher/Error/refused(_:)`` with the reason to keep `image` invisible.
    func admit(_ image: ImagePublisher.Image, store: BlobStore) throws
}

/// Admits everything: the policy until signature checks exist.
public struct AcceptAllPolicy: PublishPolicy {
    public init() {}
    public func admit(_ image: ImagePublisher.Image, store: BlobStore) throws {}
}

/// The one step through which content becomes visible, whatever brought it: a sync pass, a
/// client's push, and later a proxy, a peer or a bundle import. Blobs are already in the
/// store (an ingest committed them, verified); the publisher stores the manifests, links
/// children before their index, asks the policy, and moves tags last, each tag move of the
/// agent's own tags announced to the hooks in two phases. A crash at any instant leaves the
/// previous state servable.
public struct ImagePublisher: Sendable {
    /// Who brought the content.
    public enum Origin: String, Sendable {
        /// The agent's reconcile loop: its tags are managed (removed when unwanted, hooks fire).
        case sync
        /// A client's `PUT /v2/<name>/manifests/<reference>`.
        case push
        /// A cosign signature the sync fetched with its image (a `sha256-<hex>.sig` tag or a
        /// bundle referrer): stored before the image so the trust policy finds it, and tagged
        /// like a client's push, so it is not one of the agent's managed tags (no hooks; the
        /// sync does not remove it as an unwanted tag).
        case signature
        /// The pull-through proxy: a miss fetched from the upstream. Its tags are the agent's
        /// (``ManagedTags/proxied``: refused to client pushes) but cache: no hook events, not
        /// removed by the sync, evicted by LRU.
        case proxy
    }

    /// A manifest as received: the exact bytes, so its digest stays the source's.
    public struct ManifestContent: Sendable {
        public var digest: Digest
        public var mediaType: String
        public var bytes: [UInt8]
        public var manifest: Manifest

        public init(digest: Digest, mediaType: String, bytes: [UInt8], manifest: Manifest) {
            self.digest = digest
            self.mediaType = mediaType
            self.bytes = bytes
            self.manifest = manifest
        }
    }

    /// What to make visible.
    public struct Image: Sendable {
        public var repository: RepositoryName
        /// Tags to point at ``top`` (none: by digest only).
        public var tags: [String]
        public var top: ManifestContent
        /// An index's children that are present (a gateway keeps its own platform only).
        public var children: [ManifestContent]
        /// Blobs the manifests need, already in the store.
        public var blobs: [Digest]
        public var origin: Origin

        public init(
            repository: RepositoryName, tags: [String], top: ManifestContent, children: [ManifestContent] = [],
            blobs: [Digest] = [], origin: Origin
        ) {
            self.repository = repository
            self.tags = tags
            self.top = top
            self.children = children
            self.blobs = blobs
            self.origin = origin
        }
    }

    public enum Error: Swift.Error, Sendable, CustomStringConvertible {
        /// The policy refused the image.
        case refused(String)
        /// The store failed while writing manifests or links.
        case storage(String)
        /// The hook event could not be journaled: the tag did not move.
        case journal(String)
        /// The tag could not be moved.
        case tag(String)

        public var description: String {
            switch self {
            case .refused(let reason): "refused by policy: \(reason)"
            case .storage(let cause): "cannot store: \(cause)"
            case .journal(let cause): "cannot journal the hook event: \(cause)"
            case .tag(let cause): "cannot move the tag: \(cause)"
            }
        }
    }

    /// The result of a publish.
    public struct Outcome: Sendable {
        public var digest: Digest
        /// Tags that moved, with what they pointed at before.
        public var moved: [(tag: String, previous: Digest?)] = []
        public var updated: Bool { !moved.isEmpty }
    }

    public let store: BlobStore
    public let policy: any PublishPolicy
    public let events: (any SyncEventSink)?
    public let logger: Logger?

    public init(store: BlobStore, policy: any PublishPolicy = AcceptAllPolicy(), events: (any SyncEventSink)? = nil, logger: Logger? = nil) {
        self.store = store
        self.policy = policy
        self.events = events
        self.logger = logger
    }

    /// Makes `image` visible: links its blobs, stores and links its children then its top
    /// manifest (and a referrer entry for a manifest with a subject), asks the policy, then
    /// moves its tags. Tags of ``Origin/sync`` are recorded as the agent's own.
    ///
    /// Throws ``Error``; on any error no tag has moved.
    @discardableResult
    public func publish(_ image: Image) throws -> Outcome {
        let repository = image.repository
        do {
            for digest in image.blobs { try store.linkBlob(digest, into: repository) }
            for child in image.children where child.digest != image.top.digest {
                try store.putBlob(child.bytes, algorithm: child.digest.algorithm)
                try store.linkManifest(child.digest, mediaType: child.mediaType, into: repository)
            }
            try store.putBlob(image.top.bytes, algorithm: image.top.digest.algorithm)
            try store.linkManifest(image.top.digest, mediaType: image.top.mediaType, into: repository)
            if let subject = image.top.manifest.subject, let subjectDigest = Digest(subject.digest) {
                let descriptor = image.top.manifest.referrerDescriptor(
                    digest: image.top.digest, size: Int64(image.top.bytes.count), mediaType: image.top.mediaType)
                try store.addReferrer(image.top.digest, descriptor: JSONCoder.encode(descriptor), subject: subjectDigest, in: repository)
            }
        } catch {
            throw Error.storage("\(error)")
        }
        do {
            try policy.admit(image, store: store)
        } catch let error as Error {
            throw error
        } catch {
            throw Error.refused("\(error)")
        }
        // One writer of sync/managed.json at a time in this process: the sync and the
        // pull-through proxy publish concurrently in `run`.
        return try Self.managedFile.withLock { _ in
            var outcome = Outcome(digest: image.top.digest)
            let managedByAgent = image.origin == .sync
            var managed = managedByAgent ? ManagedTags.read(store: store) : ManagedTags()
            var managedChanged = false
            // Recorded before the tag moves: a proxied tag is never unprotected, even if the
            // process dies between the two.
            if image.origin == .proxy, !image.tags.isEmpty {
                var proxied = ManagedTags.read(store: store)
                var table = proxied.proxied ?? [:]
                for tag in image.tags { table["\(repository):\(tag)"] = image.top.digest.description }
                proxied.proxied = table
                do {
                    try proxied.write(store: store)
                } catch {
                    logger?.error("cannot record the proxied tags", metadata: ["error": "\(error)"])
                }
            }
            for tag in image.tags {
                let previous = store.resolveTag(repository, tag)
                let key = "\(repository):\(tag)"
                if previous != image.top.digest {
                    try moveTag(repository, tag, to: image.top.digest, previous: previous, announce: managedByAgent)
                    outcome.moved.append((tag, previous))
                }
                guard managedByAgent else { continue }
                if let old = managed.tags[key], old != image.top.digest.description {
                    managed.release(old)
                    managedChanged = true
                }
                if managed.tags[key] != image.top.digest.description || managed.released?[image.top.digest.description] != nil {
                    managed.tags[key] = image.top.digest.description
                    managed.reclaim(image.top.digest.description)
                    managedChanged = true
                }
            }
            if managedChanged {
                do {
                    try managed.write(store: store)
                } catch {
                    logger?.error("cannot record the agent's tags", metadata: ["error": "\(error)"])
                }
            }
            return outcome
        }
    }

    private func moveTag(_ repository: RepositoryName, _ tag: String, to digest: Digest, previous: Digest?, announce: Bool) throws {
        let key = "\(repository):\(tag)"
        var token: SyncEventToken?
        if announce {
            do {
                token = try events?.prepare(
                    SyncEvent(
                        kind: .imageUpdated, repository: repository.value, tag: tag, digest: digest.description,
                        previousDigest: previous?.description ?? ""))
            } catch {
                throw Error.journal("\(error)")
            }
        }
        do {
            try store.setTag(repository, tag, to: digest)
        } catch {
            if let token { events?.abandon(token) }
            throw Error.tag("\(error)")
        }
        if let token {
            do {
                try events?.commit(token)
            } catch {
                logger?.error("hook event not committed", metadata: ["image": "\(key)", "error": "\(error)"])
            }
        }
        if announce {
            logger?.info(
                "image updated", metadata: ["image": "\(key)", "digest": "\(digest)", "previous": "\(previous?.description ?? "none")"])
        }
    }

    /// Removes one of the agent's tags that left the desired state (when it still points
    /// where the agent put it), announcing it to the hooks, and releases its content to
    /// garbage collection at once.
    ///
    /// Throws when the event cannot be journaled or the tag not removed; the tag then stays.
    public func unpublish(managedTag key: String) throws {
        try Self.managedFile.withLock { _ in try unpublishLocked(managedTag: key) }
    }

    /// Serialises the read-modify-write of ``ManagedTags`` inside the process.
    static let managedFile = Mutex<Void>(())

    private func unpublishLocked(managedTag key: String) throws {
        var managed = ManagedTags.read(store: store)
        guard let digest = managed.tags[key] else { return }
        guard let colon = key.lastIndex(of: ":"), let repository = RepositoryName(key[..<colon]) else {
            managed.tags[key] = nil
            try managed.write(store: store)
            return
        }
        let tag = String(key[key.index(after: colon)...])
        if store.resolveTag(repository, tag)?.description == digest {
            let token = try events?.prepare(SyncEvent(kind: .imageRemoved, repository: repository.value, tag: tag, digest: digest))
            do {
                _ = try store.deleteTag(repository, tag)
            } catch {
                if let token { events?.abandon(token) }
                throw error
            }
            if let token { try events?.commit(token) }
        }
        managed.tags[key] = nil
        managed.release(digest)
        try managed.write(store: store)
    }

    /// Settles the hook events a dead process left prepared: a tag event happened when the
    /// tag is where the event says.
    public func recoverEvents() throws {
        try events?.recover { event in
            guard let repository = RepositoryName(event.repository) else { return false }
            let current = store.resolveTag(repository, event.tag)?.description
            return event.kind == .imageRemoved ? current != event.digest : current == event.digest
        }
    }
}
