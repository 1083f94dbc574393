import CSignature

/// An ECDSA P-256 public key in PEM (`-----BEGIN PUBLIC KEY-----`, what `cosign
/// generate-key-pair` writes to cosign.pub and `openssl ec -pubout` prints). Checked when
/// made, so a wrong key file fails at config load, not at the first sync.
public struct PublicKey: Sendable, Equatable {
    public let pem: [UInt8]
    /// Where the key came from (a file path), for messages.
    public let name: String

    /// Throws ``TrustError`` with code `badKey` for anything but a P-256 public key.
    public init(pem: [UInt8], name: String) throws(TrustError) {
        let rc = pem.withUnsafeBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return csignature_check_key_p256(base, buffer.count)
        }
        switch rc {
        case 0: break
        case -2: throw TrustError(.badKey, "\(name) is not an ECDSA P-256 public key (cosign generate-key-pair makes one)")
        default: throw TrustError(.badKey, "\(name) is not a PEM public key (-----BEGIN PUBLIC KEY-----)")
        }
        self.pem = pem
        self.name = name
    }

    /// Whether `signature` (ASN.1 DER, as cosign and openssl write it) signs SHA-256 of `message`.
    public func verifies(_ signature: [UInt8], over message: [UInt8]) -> Bool {
        guard !signature.isEmpty else { return false }
        return pem.withUnsafeBufferPointer { key in
            message.withUnsafeBufferPointer { body in
                signature.withUnsafeBufferPointer { sig in
                    guard let keyBase = key.baseAddress, let sigBase = sig.baseAddress else { return false }
                    return csignature_verify_p256(keyBase, key.count, body.baseAddress, body.count, sigBase, sig.count) == 0
                }
            }
        }
    }

}
