import CSatelliteSystem
import OCICore
import Glibc

/// The users of `registry.users`: an htpasswd file as Apache's `htpasswd` writes it, one
/// `name:hash` a line. Accepted hashes are those libxcrypt's crypt_r verifies and `htpasswd`
/// makes: bcrypt (`-B`, `$2y$`), SHA-256-crypt (`-2`, `$5$`) and SHA-512-crypt (`-5`, `$6$`).
/// MD5 (`$apr1$`), SHA-1 (`{SHA}`) and plain text are refused at load: they are too weak
/// to keep on a device that may be stolen.
public struct Htpasswd: Sendable {
    public struct Error: Swift.Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    private var entries: [String: String]

    /// The number of users.
    public var count: Int { entries.count }

    /// Parses an htpasswd document; `name` (the path) is only for messages.
    ///
    /// Throws ``Htpasswd/Error`` naming the line of an entry that is not `user:hash` with a
    /// supported hash.
    public init(parsing text: String, name: String) throws(Error) {
        entries = [:]
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw Error(message: "\(name) line \(lineNumber): not user:hash")
            }
            let user = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard Self.isSupported(hash) else {
                throw Error(
                    message: "\(name) line \(lineNumber): user \(user.prefix(64)) has an unsupported hash; "
                        + "make it with htpasswd -B (bcrypt), -2 (SHA-256) or -5 (SHA-512)")
            }
            entries[user] = hash
        }
    }

    /// Reads and parses the file at `path`.
    public init(path: String) throws(Error) {
        guard let bytes = try? PosixFile.readAll(path: path, limit: 1 << 20) else {
            throw Error(message: "cannot read the htpasswd file \(path) (missing, unreadable or over 1 MiB)")
        }
        try self.init(parsing: String(decoding: bytes, as: UTF8.self), name: path)
    }

    static func isSupported(_ hash: String) -> Bool {
        ["$2y$", "$2b$", "$2a$", "$5$", "$6$"].contains { hash.hasPrefix($0) }
    }

    /// Whether `password` is `user`'s. Runs the same hash work for an unknown user (against a
    /// fixed bcrypt entry) so the answer's timing does not tell which users exist; compares
    /// the hashes in constant time. Slow by design (bcrypt): call it off the event loop.
    public func verify(user: String, password: [UInt8]) -> Bool {
        let known = entries[user]
        let stored = known ?? Self.decoy
        guard let computed = Self.crypt(password, setting: stored) else { return false }
        return Self.constantTimeEqual(Array(computed.utf8), Array(stored.utf8)) && known != nil
    }

    /// A bcrypt hash of a random string at htpasswd -B's default cost (5), so unknown users
    /// cost about as much as known ones.
    private static let decoy = "$2y$05$/4N6x3BatHH97E5QuaXb/uy3D.goZSJwWL3nRgjYUHsN5dl/cFcBK"

    static func crypt(_ password: [UInt8], setting: String) -> String? {
        // A NUL inside the password would end it early in C: refuse such passwords.
        guard !password.contains(0) else { return nil }
        var output = [CChar](repeating: 0, count: 256)
        let rc = (password + [0]).withUnsafeBufferPointer { pass in
            pass.withMemoryRebound(to: CChar.self) { pass in
                guard let passBase = pass.baseAddress else { return Int32(-1) }
                return csystem_crypt_hash(passBase, setting, &output, Int32(output.count))
            }
        }
        guard rc == 0 else { return nil }
        let end = output.firstIndex(of: 0) ?? output.count
        return String(decoding: output[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Compares every byte whatever the first difference; only the lengths leak.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
