import ContentStore
import OCICore
import Synchronization

/// `trust.policies` at the store's one publish step: before the tags of an image from the
/// agent's own sources (sync, and later proxy, peers, bundles) move, its signatures, already
/// in the store next to it, must verify. A client's push is not checked here (cosign pushes
/// the image before its signature); `registry.push` governs who may push.
public final class TrustPublishPolicy: PublishPolicy {
    /// Called for every refusal (and every `warn` that let an image through): the hook
    /// event, the log line.
    /// `previous` is what the image's first tag holds now (kept under `require`).
    public typealias Observer = @Sendable (
        _ image: ImagePublisher.Image, _ previous: Digest?, _ error: TrustError, _ action: TrustPolicy.Action
    ) -> Void

    public let policy: TrustPolicy
    private let observer: Observer?
    private let counters = Mutex<(rejected: Int64, warned: Int64, accepted: Int64)>((0, 0, 0))

    public init(policy: TrustPolicy, observer: Observer? = nil) {
        self.policy = policy
        self.observer = observer
    }

    /// Images refused (`require`), let through unsigned (`warn`), and accepted with a valid
    /// signature, since start: the `satellite_trust_*_total` metrics.
    public var counts: (rejected: Int64, warned: Int64, accepted: Int64) { counters.withLock { $0 } }

    public func admit(_ image: ImagePublisher.Image, store: BlobStore) throws {
        guard image.origin != .push, !policy.rules.isEmpty else { return }
        if TrustPolicy.isSignatureArtifact(tags: image.tags, manifest: image.top.bytes) { return }
        let repository = image.repository
        let digest = image.top.digest
        let signatures = TrustPolicy.Signatures(
            legacyManifest: {
                guard let tag = CosignSignature.legacyTag(for: digest.description), let sig = store.resolveTag(repository, tag) else {
                    return nil
                }
                return try? store.readBlob(sig, limit: Manifest.maxSize)
            },
            referrers: {
                guard let entries = try? store.referrers(of: digest, in: repository) else { return [] }
                return entries.compactMap { referrer, _ in try? store.readBlob(referrer, limit: Manifest.maxSize) }
            },
            blob: { text, limit in
                guard let blob = Digest(text) else { return nil }
                return try? store.readBlob(blob, limit: limit)
            })
        switch policy.evaluate(repository: repository.value, digest: digest.description, signatures: signatures) {
        case .notCovered:
            return
        case .accepted:
            counters.withLock { $0.accepted += 1 }
        case .rejected(let error, let action):
            counters.withLock {
                if action == .require { $0.rejected += 1 } else { $0.warned += 1 }
            }
            observer?(image, image.tags.first.flatMap { store.resolveTag(repository, $0) }, error, action)
            if action == .require {
                throw ImagePublisher.Error.refused("\(repository)@\(digest) has no valid signature: \(error)")
            }
        }
    }
}
