import CSignature
import OCICore

/// An ECDSA P-256 private key in PEM (`openssl ecparam -name prime256v1 -genkey -noout`
/// writes `-----BEGIN EC PRIVATE KEY-----`; `openssl genpkey -algorithm EC -pkeyopt
/// ec_paramgen_curve:P-256` writes PKCS#8 `-----BEGIN PRIVATE KEY-----`), unencrypted.
/// Signs bundle documents (`bundle create --sign`).
public struct PrivateKey: Sendable {
    private let pem: [UInt8]
    /// Where the key came from (a file path), for messages.
    public let name: String
    /// The key id of its public half (``PublicKey/keyID``).
    public let keyID: String

    /// Throws ``TrustError`` with code `badKey` for anything but an unencrypted P-256 private key.
    public init(pem: [UInt8], name: String) throws(TrustError) {
        self.pem = pem
        self.name = name
        // Signing once proves the key is a usable private key (a public key cannot sign).
        let rc = Self.sign(pem: pem, message: []).rc
        switch rc {
        case 0: break
        case -2: throw TrustError(.badKey, "\(name) is not an ECDSA P-256 key (openssl ecparam -name prime256v1 -genkey -noout makes one)")
        default: throw TrustError(.badKey, "\(name) is not an unencrypted PEM private key (-----BEGIN EC PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)")
        }
        keyID = (try? PublicKey.derivedKeyID(pem: pem, name: name)) ?? ""
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `message`.
    ///
    /// Throws ``TrustError`` (`badKey`) when mbedTLS cannot sign.
    public func sign(_ message: [UInt8]) throws(TrustError) -> [UInt8] {
        let (rc, signature) = Self.sign(pem: pem, message: message)
        guard rc == 0 else { throw TrustError(.badKey, "cannot sign with \(name) (mbedTLS code \(rc))") }
        return signature
    }

    private static func sign(pem: [UInt8], message: [UInt8]) -> (rc: Int32, signature: [UInt8]) {
        var signature = [UInt8](repeating: 0, count: Int(CSIGNATURE_MAX_SIGNATURE))
        var length = 0
        let rc = pem.withUnsafeBufferPointer { key in
            message.withUnsafeBufferPointer { body in
                signature.withUnsafeMutableBufferPointer { out -> Int32 in
                    guard let keyBase = key.baseAddress, let outBase = out.baseAddress else { return -1 }
                    return csignature_sign_p256(keyBase, key.count, body.baseAddress, body.count, outBase, &length)
                }
            }
        }
        return (rc, rc == 0 ? Array(signature.prefix(length)) : [])
    }
}

extension PublicKey {
    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo: names the signer of a bundle, the same
    /// for the private key that signed and the public key that verifies.
    public var keyID: String { (try? Self.derivedKeyID(pem: pem, name: name)) ?? "" }

    static func derivedKeyID(pem: [UInt8], name: String) throws(TrustError) -> String {
        var der = [UInt8](repeating: 0, count: 256)
        var length = 0
        let rc = pem.withUnsafeBufferPointer { key in
            der.withUnsafeMutableBufferPointer { out -> Int32 in
                guard let keyBase = key.baseAddress, let outBase = out.baseAddress else { return -1 }
                return csignature_public_der_p256(keyBase, key.count, outBase, out.count, &length)
            }
        }
        guard rc == 0 else { throw TrustError(.badKey, "\(name): cannot read its public key (mbedTLS code \(rc))") }
        return ContentHasher.digest(of: Array(der.prefix(length))).description
    }
}
