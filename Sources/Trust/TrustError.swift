/// Why a signature did not count. Each message names the cause in one line, for the log,
/// the `trust-rejected` hook and `status`.
public struct TrustError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Equatable, CustomStringConvertible {
        private let value: String
        public var description: String { value }

        /// The key file is not a PEM ECDSA P-256 public key.
        public static let badKey = Code(value: "bad-key")
        /// The signature, payload, envelope or bundle is not in cosign's format.
        public static let malformed = Code(value: "malformed")
        /// No configured key verifies the signature.
        public static let untrusted = Code(value: "untrusted")
        /// The signed payload names another digest (a replayed signature).
        public static let wrongDigest = Code(value: "wrong-digest")
        /// The manifest carries no signature at all.
        public static let unsigned = Code(value: "unsigned")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
