import JSONCoding

/// Checks cosign signatures against a set of trusted keys, and that what was signed names
/// exactly the manifest digest being published: a valid signature of another image (a
/// replayed signature) is refused like a forged one.
public struct CosignVerifier: Sendable {
    public let keys: [PublicKey]

    public init(keys: [PublicKey]) {
        self.keys = keys
    }

    /// The key that verified `signature` for the manifest `digest` (`sha256:<hex>`).
    ///
    /// Throws ``TrustError``: `malformed` (not cosign's format, bad base64, truncated
    /// envelope), `untrusted` (no key verifies), `wrongDigest` (authentic, but for another
    /// manifest).
    public func verify(_ signature: CosignSignature, digest: String) throws(TrustError) -> PublicKey {
        switch signature {
        case .simpleSigning(let payload, let text):
            guard let der = Base64.decode(text) else {
                throw TrustError(.malformed, "the \(CosignSignature.signatureAnnotation) annotation is not base64")
            }
            let key = try trustedKey(der, over: payload)
            try checkSimpleSigning(payload, digest: digest)
            return key
        case .bundle(let bytes):
            let envelope = try DSSEEnvelope(bundle: bytes)
            let message = envelope.preAuthenticationEncoding
            var lastError = TrustError(.malformed, "the DSSE envelope has no signatures")
            for entry in envelope.signatures {
                do {
                    let key = try trustedKey(entry, over: message)
                    try checkStatement(envelope, digest: digest)
                    return key
                } catch {
                    lastError = error
                }
            }
            throw lastError
        }
    }

    /// The first signature of `signatures` that verifies for `digest`, or the most telling
    /// refusal: a replay over a forgery over a malformed document; `unsigned` when empty.
    public func verifyAny(_ signatures: [CosignSignature], digest: String) -> Result<PublicKey, TrustError> {
        var worst: TrustError?
        for signature in signatures {
            do {
                return .success(try verify(signature, digest: digest))
            } catch {
                if worst == nil || rank(error.code) > rank(worst?.code ?? .unsigned) { worst = error }
            }
        }
        return .failure(worst ?? TrustError(.unsigned, "\(digest) has no cosign signature"))
    }

    private func rank(_ code: TrustError.Code) -> Int {
        switch code {
        case .wrongDigest: 3
        case .untrusted: 2
        case .malformed: 1
        default: 0
        }
    }

    private func trustedKey(_ der: [UInt8], over message: [UInt8]) throws(TrustError) -> PublicKey {
        guard let key = keys.first(where: { $0.verifies(der, over: message) }) else {
            throw TrustError(.untrusted, "the signature is not by any configured key (\(keys.map(\.name).joined(separator: ", ")))")
        }
        return key
    }

    /// `critical.image.docker-manifest-digest` must be this digest, and `critical.type` one
    /// of cosign's two payload types.
    private func checkSimpleSigning(_ payload: [UInt8], digest: String) throws(TrustError) {
        guard let document = try? JSON.parse(payload), let critical = document["critical"] else {
            throw TrustError(.malformed, "the simple-signing payload is not JSON with a \"critical\" object")
        }
        guard case .string(let type)? = critical["type"],
            type == "cosign container image signature" || type == "https://sigstore.dev/cosign/sign/v1"
        else {
            throw TrustError(.malformed, "the simple-signing payload's critical.type is not cosign's")
        }
        guard case .string(let signed)? = critical["image"]?["docker-manifest-digest"] else {
            throw TrustError(.malformed, "the simple-signing payload has no critical.image.docker-manifest-digest")
        }
        guard signed == digest else {
            throw TrustError(.wrongDigest, "the signature is for \(signed.prefix(80)), not \(digest) (a replayed signature)")
        }
    }

    /// The in-toto statement must name this digest among its subjects.
    private func checkStatement(_ envelope: DSSEEnvelope, digest: String) throws(TrustError) {
        guard envelope.payloadType == "application/vnd.in-toto+json" else {
            throw TrustError(.malformed, "the DSSE payload type is \(envelope.payloadType.prefix(80)), not application/vnd.in-toto+json")
        }
        guard let statement = try? JSON.parse(envelope.payload), case .array(let subjects)? = statement["subject"],
            !subjects.isEmpty
        else {
            throw TrustError(.malformed, "the DSSE payload is not an in-toto statement with subjects")
        }
        let parts = digest.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { throw TrustError(.malformed, "\(digest) is not a digest") }
        var named: [String] = []
        for subject in subjects {
            guard case .string(let value)? = subject["digest"]?[String(parts[0])] else { continue }
            if value == parts[1] { return }
            named.append("\(parts[0]):\(value.prefix(64))")
        }
        throw TrustError(
            .wrongDigest,
            "the signed statement names \(named.isEmpty ? "no \(parts[0]) digest" : named.joined(separator: ", ")), not \(digest) (a replayed signature)")
    }
}
