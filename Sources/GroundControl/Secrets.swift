import Crypto
import FoundationEssentials
import OCICore
import _CryptoExtras

/// Random secrets, their stored hashes, and user passwords.
public enum Secrets {
    /// `count` random bytes as lower-case hex (Harbor Satellite's `GenerateRandomToken(32)`).
    public static func randomHex(_ count: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return OCICore.Digest.hexString((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// SHA-256 hex: how tokens, sessions and satellite secrets are stored. They are 256
    /// random bits, so a fast hash is enough; passwords people choose get PBKDF2.
    public static func sha256Hex(_ text: String) -> String {
        OCICore.Digest.hexString(Array(SHA256.hash(data: Array(text.utf8))))
    }

    public static func sha256Hex(bytes: [UInt8]) -> String {
        OCICore.Digest.hexString(Array(SHA256.hash(data: bytes)))
    }

    /// PBKDF2-HMAC-SHA256 iterations (OWASP's 2023 figure for SHA-256).
    public static let passwordIterations = 600_000

    /// `pbkdf2-sha256$ITER$SALT$HASH` (salt and hash base64).
    public static func hashPassword(_ password: String, iterations: Int = passwordIterations) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255, using: &generator) }
        let key = try derive(password, salt: salt, iterations: iterations)
        return "pbkdf2-sha256$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    public static func verifyPassword(_ password: String, hash: String) -> Bool {
        let parts = hash.split(separator: "$").map(String.init)
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let iterations = Int(parts[1]),
            (1_000...10_000_000).contains(iterations), let salt = Data(base64Encoded: parts[2]),
            let expected = Data(base64Encoded: parts[3]),
            let key = try? derive(password, salt: Array(salt), iterations: iterations)
        else { return false }
        return constantTimeEqual(key, Array(expected))
    }

    static func derive(_ password: String, salt: [UInt8], iterations: Int) throws -> [UInt8] {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32,
            unsafeUncheckedRounds: iterations)
        return key.withUnsafeBytes { Array($0) }
    }

    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
