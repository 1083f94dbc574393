/// Zero-touch registration (ZTR): a satellite trades its one-time token for registry
/// credentials and the reference of its state artifact.
///
/// Wire format of Harbor Satellite's Ground Control (`models.ZtrResult`,
/// `config.StateConfig`): `POST /satellites/ztr` with ``ZTRRequest``, or the older
/// `GET /satellites/ztr/{token}`, both answered with ``ZTRResult``.
public struct ZTRRequest: Codable, Sendable, Equatable {
    public var token: String

    public init(token: String) {
        self.token = token
    }
}

/// Credentials for the central registry, as Harbor Satellite names them (`auth`).
public struct RegistryCredentials: Codable, Sendable, Equatable {
    /// The registry's base URL (`https://harbor.example.com`).
    public var url: String
    public var username: String
    public var password: String

    public init(url: String, username: String, password: String) {
        self.url = url
        self.username = username
        self.password = password
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        url = try container.decodeIfPresent(String.self, forKey: .url) ?? ""
        username = try container.decodeIfPresent(String.self, forKey: .username) ?? ""
        password = try container.decodeIfPresent(String.self, forKey: .password) ?? ""
    }
}

/// The answer to a successful ZTR.
public struct ZTRResult: Codable, Sendable, Equatable {
    /// `<registry>/satellite/satellite-state/<name>/state:latest`.
    public var state: String
    public var auth: RegistryCredentials

    public init(state: String, auth: RegistryCredentials) {
        self.state = state
        self.auth = auth
    }

    /// Whether every field a satellite needs is filled (Harbor Satellite refuses the
    /// answer otherwise, and so do we).
    public var isComplete: Bool {
        !state.isEmpty && !auth.url.isEmpty && !auth.username.isEmpty && !auth.password.isEmpty
    }
}

/// `POST /satellites/refresh` (also `/sat/refresh`), Basic auth with the current credential:
/// the answer carries the new secret; the username stays.
public struct CredentialRefreshResult: Codable, Sendable, Equatable {
    public var secret: String
    /// When the new secret expires (RFC 3339), if Ground Control says.
    public var expiresAt: String?

    public init(secret: String, expiresAt: String? = nil) {
        self.secret = secret
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case secret
        case expiresAt = "expires_at"
    }
}
