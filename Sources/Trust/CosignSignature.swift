import JSONCoding

/// One cosign signature of an image manifest, in either of the two formats cosign writes.
///
/// **Legacy tag format** (cosign 1.x–2.x default; sigstore/cosign `pkg/oci/static` and
/// `pkg/cosign/verify.go`, payload type from sigstore/sigstore
/// `pkg/signature/payload/payload.go`): the manifest tagged `sha256-<hex>.sig` in the image's
/// repository has one layer per signature, media type
/// `application/vnd.dev.cosign.simplesigning.v1+json`, whose blob is the "simple signing"
/// payload
/// `{"critical":{"identity":{"docker-reference":"REPO"},"image":{"docker-manifest-digest":"sha256:HEX"},"type":"cosign container image signature"},"optional":null}`
/// and whose annotation `dev.cosignproject.cosign/signature` is the base64 ASN.1 DER ECDSA
/// signature over SHA-256 of exactly those payload bytes.
///
/// **Sigstore bundle format** (cosign 2.4+ `--new-bundle-format`, default in cosign 3;
/// sigstore/protobuf-specs `Bundle` v0.3, DSSE from secure-systems-lab/dsse `protocol.md`):
/// an OCI 1.1 referrer (its `subject` is the image manifest) with artifactType and one layer
/// of media type `application/vnd.dev.sigstore.bundle.v0.3+json`, the bundle JSON
/// `{"mediaType":…,"verificationMaterial":{…},"dsseEnvelope":{"payload":B64,"payloadType":"application/vnd.in-toto+json","signatures":[{"sig":B64,"keyid":""}]}}`.
/// The payload is an in-toto Statement whose `subject[].digest.sha256` names the image; the
/// signature is over DSSE's pre-authentication encoding
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload` (lengths in ASCII decimal).
public enum CosignSignature: Sendable, Equatable {
    /// A simple-signing payload blob and its base64 signature annotation.
    case simpleSigning(payload: [UInt8], signature: String)
    /// A sigstore bundle document.
    case bundle([UInt8])

    public static let simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
    public static let signatureAnnotation = "dev.cosignproject.cosign/signature"
    public static let bundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
    /// The largest payload or bundle read into memory; cosign's are a few KiB.
    public static let maxDocumentSize = 1 << 20

    /// The tag of the legacy signature manifest for a manifest digest:
    /// `sha256:abc…` → `sha256-abc….sig`; nil for a malformed digest.
    public static func legacyTag(for digest: String) -> String? {
        let parts = digest.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == "sha256", parts[1].utf8.count == 64,
            parts[1].utf8.allSatisfy({ isLowerHex($0) })
        else { return nil }
        return "sha256-\(parts[1]).sig"
    }

    /// A layer of a signature manifest that carries a signature: the blob to read and, for the
    /// legacy format, the signature annotation.
    public struct Layer: Sendable, Equatable {
        public var digest: String
        public var size: Int64
        /// The base64 signature (legacy format); nil for a bundle layer.
        public var signature: String?

        public init(digest: String, size: Int64, signature: String?) {
            self.digest = digest
            self.size = size
            self.signature = signature
        }
    }

    /// The signature layers of a legacy `.sig` manifest. Layers of other media types are
    /// skipped; a layer of the right type without its annotation is malformed.
    public static func simpleSigningLayers(manifest: [UInt8]) throws(TrustError) -> [Layer] {
        try layers(manifest, mediaType: simpleSigningMediaType, annotated: true)
    }

    /// The bundle layers of a referrer; empty when the referrer is not a sigstore bundle.
    public static func bundleLayers(referrer: [UInt8]) throws(TrustError) -> [Layer] {
        try layers(referrer, mediaType: bundleMediaType, annotated: false)
    }

    private static func layers(_ manifest: [UInt8], mediaType: String, annotated: Bool) throws(TrustError) -> [Layer] {
        guard let document = try? JSON.parse(manifest), case .array(let layers)? = document["layers"] else {
            throw TrustError(.malformed, "the signature manifest is not an OCI image manifest")
        }
        var result: [Layer] = []
        for layer in layers {
            guard case .string(let type)? = layer["mediaType"], type == mediaType else { continue }
            guard case .string(let digest)? = layer["digest"], case .number(let sizeText)? = layer["size"],
                let size = Int64(sizeText), size >= 0, size <= Int64(maxDocumentSize)
            else {
                throw TrustError(.malformed, "a \(mediaType) layer has no valid digest or size (at most \(maxDocumentSize) bytes)")
            }
            var signature: String?
            if annotated {
                guard case .string(let text)? = layer["annotations"]?[signatureAnnotation] else {
                    throw TrustError(.malformed, "a signature layer has no \(signatureAnnotation) annotation")
                }
                signature = text
            }
            result.append(Layer(digest: digest, size: size, signature: signature))
        }
        return result
    }

    static func isLowerHex(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte)
    }
}
