/// A content digest, `algorithm:hex`: sha256 (what every image uses) or sha512.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Algorithm: String, Sendable {
        case sha256
        case sha512

        var hexLength: Int {
            switch self {
            case .sha256: 64
            case .sha512: 128
            }
        }
    }

    public let algorithm: Algorithm
    /// Lowercase hex of the hash.
    public let hex: String

    /// Parses `sha256:<64 lowercase hex>` (or sha512). Returns nil for anything else, so a
    /// digest that reaches a path is always safe to use as a file name.
    public init?(_ text: some StringProtocol) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        guard let algorithm = Algorithm(rawValue: String(text[..<colon])) else { return nil }
        let hex = text[text.index(after: colon)...]
        guard hex.utf8.count == algorithm.hexLength,
            hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        self.algorithm = algorithm
        self.hex = String(hex)
    }

    /// Whether `text` has the general digest shape (`alg:encoded`) even if we cannot verify it.
    public static func looksLikeDigest(_ text: some StringProtocol) -> Bool {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else { return false }
        let alg = text[..<colon]
        let encoded = text[text.index(after: colon)...]
        return !encoded.isEmpty
            && alg.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2b || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }
            && encoded.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x3d || $0 == 0x5f || $0 == 0x2d }
    }

    init(_ algorithm: Algorithm, bytes: some Collection<UInt8>) {
        self.algorithm = algorithm
        self.hex = Digest.hexString(bytes)
    }

    public var description: String { "\(algorithm.rawValue):\(hex)" }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }

    /// Two lowercase hex digits.
    public static func hexByte(_ byte: UInt8) -> String {
        hexString([byte])
    }

    public static func hexString(_ bytes: some Collection<UInt8>) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
