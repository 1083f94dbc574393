import JSONCoding

extension TrustPolicy {
    /// The verdict on one manifest about to be published.
    public enum Verdict: Sendable, Equatable {
        /// No policy matches the repository: no signature needed.
        case notCovered
        /// A signature by `key` names this digest.
        case accepted(key: String)
        /// No valid signature; `action` says whether the tag may move anyway.
        case rejected(TrustError, action: Action)
    }

    /// Where the signatures of a manifest are read from: the store, after the sync put them
    /// there (the adapter is a few lines over the store's tag, referrer and blob reads).
    public struct Signatures {
        /// The manifest tagged `sha256-<hex>.sig` (``CosignSignature/legacyTag(for:)``), if any.
        public var legacyManifest: () -> [UInt8]?
        /// The manifests whose subject is the digest (OCI 1.1 referrers).
        public var referrers: () -> [[UInt8]]
        /// A blob by digest, at most `limit` bytes, its digest checked; nil when absent.
        public var blob: (_ digest: String, _ limit: Int) -> [UInt8]?

        public init(
            legacyManifest: @escaping () -> [UInt8]?, referrers: @escaping () -> [[UInt8]],
            blob: @escaping (_ digest: String, _ limit: Int) -> [UInt8]?
        ) {
            self.legacyManifest = legacyManifest
            self.referrers = referrers
            self.blob = blob
        }
    }

    /// Decides whether `digest` may be published in `repository`.
    public func evaluate(repository: String, digest: String, signatures: Signatures) -> Verdict {
        guard let rule = rule(for: repository) else { return .notCovered }
        var found: [CosignSignature] = []
        var problems: [TrustError] = []
        if let manifest = signatures.legacyManifest() {
            do {
                for layer in try CosignSignature.simpleSigningLayers(manifest: manifest) {
                    guard let payload = signatures.blob(layer.digest, CosignSignature.maxDocumentSize) else {
                        problems.append(TrustError(.malformed, "the signature payload \(layer.digest) is missing"))
                        continue
                    }
                    found.append(.simpleSigning(payload: payload, signature: layer.signature ?? ""))
                }
            } catch {
                problems.append(error)
            }
        }
        for referrer in signatures.referrers() {
            do {
                for layer in try CosignSignature.bundleLayers(referrer: referrer) {
                    guard let bundle = signatures.blob(layer.digest, CosignSignature.maxDocumentSize) else {
                        problems.append(TrustError(.malformed, "the sigstore bundle \(layer.digest) is missing"))
                        continue
                    }
                    found.append(.bundle(bundle))
                }
            } catch {
                problems.append(error)
            }
        }
        switch rule.verifier.verifyAny(found, digest: digest) {
        case .success(let key):
            return .accepted(key: key.name)
        case .failure(let error):
            // With no signature at all, a malformed signature manifest explains more than "unsigned".
            if error.code == .unsigned, let problem = problems.first { return .rejected(problem, action: rule.action) }
            return .rejected(error, action: rule.action)
        }
    }

    /// Whether a manifest is itself a signature (a `.sig` tag or a sigstore-bundle
    /// referrer): those are published without a signature of their own.
    public static func isSignatureArtifact(tags: [String], manifest: [UInt8]) -> Bool {
        if !tags.isEmpty, tags.allSatisfy({ $0.hasPrefix("sha256-") && $0.hasSuffix(".sig") }) { return true }
        if tags.isEmpty, let document = try? JSON.parse(manifest), document["subject"] != nil,
            case .string(let type)? = document["artifactType"], type == CosignSignature.bundleMediaType
        {
            return true
        }
        return false
    }
}
