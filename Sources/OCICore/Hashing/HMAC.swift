/// HMAC-SHA256 (RFC 2104) over the store's SHA-256, for the site secret's proofs between
/// peers (no TLS library needed on the edge for it).
public enum HMAC {
    private static let blockSize = 64

    /// The 32-byte HMAC-SHA256 of `message` under `key`.
    public static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var key = key
        if key.count > blockSize { key = ContentHasher.digest(of: key).rawBytes }
        key += [UInt8](repeating: 0, count: blockSize - key.count)
        let inner = ContentHasher(.sha256)
        inner.update(key.map { $0 ^ 0x36 })
        inner.update(message)
        let outer = ContentHasher(.sha256)
        outer.update(key.map { $0 ^ 0x5c })
        outer.update(inner.digest().rawBytes)
        return outer.digest().rawBytes
    }

    /// The HMAC as lower-case hex.
    public static func sha256Hex(key: [UInt8], message: String) -> String {
        Digest.hexString(sha256(key: key, message: Array(message.utf8)))
    }

    /// Compares two byte strings in time that depends only on their lengths (a MAC check
    /// must not tell an attacker how many leading bytes were right).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

extension Digest {
    /// The digest's bytes (decoded from its hex).
    public var rawBytes: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for c in hex.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            default: v = 0
            }
            if let h = high {
                bytes.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return bytes
    }
}
