import JSONCoding

/// The DSSE envelope of a sigstore bundle (secure-systems-lab/dsse `envelope.md`), decoded.
struct DSSEEnvelope {
    var payloadType: String
    var payload: [UInt8]
    /// The DER signatures, base64-decoded.
    var signatures: [[UInt8]]

    /// Reads `dsseEnvelope` out of a sigstore bundle v0.3 document.
    init(bundle: [UInt8]) throws(TrustError) {
        guard bundle.count <= CosignSignature.maxDocumentSize, let document = try? JSON.parse(bundle) else {
            throw TrustError(.malformed, "the sigstore bundle is not a JSON document (truncated?)")
        }
        guard case .string(let mediaType)? = document["mediaType"], mediaType.hasPrefix("application/vnd.dev.sigstore.bundle") else {
            throw TrustError(.malformed, "the document is not a sigstore bundle (no bundle mediaType)")
        }
        guard let envelope = document["dsseEnvelope"] else {
            throw TrustError(.malformed, "the sigstore bundle has no dsseEnvelope (only DSSE image signatures are accepted)")
        }
        guard case .string(let type)? = envelope["payloadType"], case .string(let body)? = envelope["payload"],
            let payload = Base64.decode(body)
        else {
            throw TrustError(.malformed, "the DSSE envelope has no base64 payload and payloadType")
        }
        guard case .array(let entries)? = envelope["signatures"], !entries.isEmpty else {
            throw TrustError(.malformed, "the DSSE envelope has no signatures")
        }
        var signatures: [[UInt8]] = []
        for entry in entries {
            guard case .string(let text)? = entry["sig"], let der = Base64.decode(text), !der.isEmpty else {
                throw TrustError(.malformed, "a DSSE signature is not base64")
            }
            signatures.append(der)
        }
        payloadType = type
        self.payload = payload
        self.signatures = signatures
    }

    /// PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
    var preAuthenticationEncoding: [UInt8] {
        var bytes = Array("DSSEv1 \(payloadType.utf8.count) ".utf8)
        bytes += Array(payloadType.utf8)
        bytes += Array(" \(payload.count) ".utf8)
        bytes += payload
        return bytes
    }
}
