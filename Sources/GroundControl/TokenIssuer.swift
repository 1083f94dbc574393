import Crypto
import Fleet
import FoundationEssentials
import OCICore
import Hummingbird
import JSONCoding
import SwiftASN1
import X509

/// The Docker token-auth issuer (`/auth/token`) of a `registry.kind = distribution`
/// registry (Debian's docker-registry with `auth.token`): ES256 JWTs whose `x5c` header
/// carries the signing certificate the registry's `rootcertbundle` trusts.
///
/// A satellite's credential gets pull on exactly its groups' repositories and its own
/// state artifacts; an admin user gets push and pull on everything.
public struct TokenIssuer: Sendable {
    let key: P256.Signing.PrivateKey
    let certificateDER: [UInt8]
    let service: String
    let issuer: String
    /// Token lifetime in seconds.
    public static let lifetime: Int64 = 300

    /// Loads the key and certificate, creating both at first start.
    public static func loadOrCreate(keyFile: String, certFile: String, service: String, issuer: String) throws
        -> TokenIssuer
    {
        let fm = FileManager.default
        if let keyData = fm.contents(atPath: keyFile), let certData = fm.contents(atPath: certFile) {
            let key = try P256.Signing.PrivateKey(pemRepresentation: String(decoding: keyData, as: UTF8.self))
            let certificate = try Certificate(pemEncoded: String(decoding: certData, as: UTF8.self))
            return TokenIssuer(
                key: key, certificateDER: try certificate.serializeAsPEM().derBytes, service: service, issuer: issuer)
        }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("ground-control token signer") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
            },
            issuerPrivateKey: .init(key))
        try writeAtomically(key.pemRepresentation, to: keyFile, mode: 0o600)
        try writeAtomically(try certificate.serializeAsPEM().pemString + "\n", to: certFile, mode: 0o644)
        return TokenIssuer(
            key: key, certificateDER: try certificate.serializeAsPEM().derBytes, service: service, issuer: issuer)
    }

    /// Writes `text` to `path` atomically with `mode` (its directory created when missing).
    static func writeAtomically(_ text: String, to path: String, mode: UInt32) throws {
        try PosixFile.writeAtomically(path.contains("/") ? path : "./" + path, Array(text.utf8), durable: true, mode: mode)
    }

    public struct Access: Codable, Sendable, Equatable {
        public var type: String
        public var name: String
        public var actions: [String]
    }

    /// A signed token granting `access`.
    public func token(subject: String, access: [Access], now: Int64 = Int64(Date().timeIntervalSince1970)) throws -> String {
        let header = JSON.object([
            ("alg", .string("ES256")), ("typ", .string("JWT")),
            ("x5c", .array([.string(Data(certificateDER).base64EncodedString())])),
        ])
        let claims = JSON.object([
            ("iss", .string(issuer)), ("sub", .string(subject)), ("aud", .string(service)),
            ("exp", .number(String(now + Self.lifetime))), ("nbf", .number(String(now - 10))),
            ("iat", .number(String(now))), ("jti", .string(Secrets.randomHex(16))),
            ("access", try JSONCoder.tree(access)),
        ])
        let signingInput = Self.base64URL(header.serialized()) + "." + Self.base64URL(claims.serialized())
        let signature = try key.signature(for: Array(signingInput.utf8))
        return signingInput + "." + Self.base64URL(Array(signature.rawRepresentation))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        String(Base64.encode(bytes).compactMap { c -> Character? in c == "+" ? "-" : c == "/" ? "_" : c == "=" ? nil : c })
    }

    /// `GET /auth/token?service=…&scope=repository:NAME:pull,push`, Basic auth.
    func issue(_ request: Request, repository: FleetRepository) async throws -> Response {
        guard let (user, password) = FleetAPI.basic(request) else {
            var error = APIError.unauthorized("credentials required")
            error.headers[.wwwAuthenticate] = "Basic realm=\"ground-control\""
            throw error
        }
        let query = request.uri.queryParameters
        if let asked = query["service"], "\(asked)" != service {
            throw APIError.badRequest("unknown service \(asked)")
        }
        let scopes: [String] = query.getAll("scope").flatMap { "\($0)".split(separator: " ").map { "\($0)" } }
        var granted: [Access] = []
        if let satellite = try await repository.authenticateSatellite(robot: user, secret: password) {
            let allowed = try await repository.pullableRepositories(satellite: satellite.name)
            for scope in scopes {
                guard let parsed = Self.parse(scope), allowed.contains(parsed.name) else { continue }
                let actions = parsed.actions.filter { $0 == "pull" }
                if !actions.isEmpty { granted.append(Access(type: "repository", name: parsed.name, actions: actions)) }
            }
        } else {
            let account = try await repository.verifyUser(username: user, password: password)
            let rank = FleetAPI.roleRank[account.role] ?? 0
            for scope in scopes {
                guard let parsed = Self.parse(scope) else { continue }
                let writable: Set<String> = rank >= 1 ? ["pull", "push", "delete"] : ["pull"]
                let actions: [String] = parsed.actions.filter { writable.contains($0) }
                if !actions.isEmpty { granted.append(Access(type: "repository", name: parsed.name, actions: actions)) }
            }
        }
        let now = Int64(Date().timeIntervalSince1970)
        let token = try token(subject: user, access: granted, now: now)
        return try FleetAPI.json(
            TokenAnswer(token: token, accessToken: token, expiresIn: Self.lifetime, issuedAt: Time.rfc3339(now)))
    }

    struct TokenAnswer: Codable {
        var token: String
        var accessToken: String
        var expiresIn: Int64
        var issuedAt: String
        enum CodingKeys: String, CodingKey {
            case token
            case accessToken = "access_token"
            case expiresIn = "expires_in"
            case issuedAt = "issued_at"
        }
    }

    /// `repository:NAME:pull,push` (NAME may hold a `:port` host).
    static func parse(_ scope: String) -> (name: String, actions: [String])? {
        guard scope.hasPrefix("repository:"), let last = scope.lastIndex(of: ":") else { return nil }
        let name = String(scope[scope.index(scope.startIndex, offsetBy: 11)..<last])
        guard FleetRepository.isValidRepository(name) else { return nil }
        return (name, scope[scope.index(after: last)...].split(separator: ",").map(String.init))
    }
}
