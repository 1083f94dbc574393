import FoundationEssentials
import JSONCoding

/// ground-control's configuration (DESIGN.md, "Ground Control"). Every key may also come
/// from an environment variable (`GC_LISTEN`, `GC_DATABASE`, `GC_REGISTRY_URL`, ...), which
/// wins over the file, so a container needs no file at all.
public struct GroundControlConfig: Sendable, Equatable {
    public var listenHost = "127.0.0.1"
    public var listenPort = 8080
    /// `sqlite://PATH` or `postgres://user:pass@host:port/db`.
    public var database = "sqlite://ground-control-data/gc.sqlite"
    /// Where the token signing key and certificate live when no path is given.
    public var dataDirectory = "ground-control-data"
    public var registry = Registry()
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    /// The heartbeat interval satellites are told to use, in seconds; stale after three missed.
    public var heartbeatInterval: Int64 = 30
    /// How long a satellite's registry credential lives, in seconds (30 days).
    public var credentialLifetime: Int64 = 30 * 86_400
    /// A heartbeat inside this many seconds of the credential's expiry is answered with
    /// `refresh_credentials` (7 days).
    public var credentialRefreshWindow: Int64 = 7 * 86_400
    /// Requests per minute one credential or token may make on the satellite-facing API.
    public var satelliteRequestsPerMinute: Int64 = 120
    /// PBKDF2-SHA256 iterations for new password hashes (each hash keeps its own count).
    public var passwordIterations = Secrets.passwordIterations

    public struct Registry: Sendable, Equatable {
        public var url = "http://127.0.0.1:5000"
        /// `distribution` (ground-control issues the registry's tokens) or `harbor`.
        public var kind = "distribution"
        public var username = ""
        public var passwordFile: String?
        public var tokenCertFile: String?
        public var tokenKeyFile: String?
        public var service = "central-registry"
        public var issuer = "ground-control"
        public init() {}
    }

    public init() {}

    /// The registry's host[:port], as image references name it.
    public var registryHost: String {
        var text = registry.url
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text.removeFirst(scheme.count) }
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    public var resolvedTokenCertFile: String { registry.tokenCertFile ?? dataDirectory + "/token-signing.crt" }
    public var resolvedTokenKeyFile: String { registry.tokenKeyFile ?? dataDirectory + "/token-signing.key" }

    /// Reads `path` (JSON; unknown keys are an error), then the environment.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> GroundControlConfig
    {
        var config = GroundControlConfig()
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError("cannot read \(path)")
            }
            let tree: JSON
            do { tree = try JSON.parse(Array(data)) } catch { throw ConfigError("\(path): \(error)") }
            try config.apply(tree)
        }
        try config.apply(environment: environment)
        return config
    }

    mutating func apply(_ tree: JSON) throws {
        guard case .object(let members) = tree else { throw ConfigError("the config must be a JSON object") }
        for (key, value) in members {
            switch key {
            case "listen": try setListen(string(value, key))
            case "database": database = try string(value, key)
            case "dataDirectory": dataDirectory = try string(value, key)
            case "heartbeatInterval": heartbeatInterval = try Self.seconds(string(value, key), key)
            case "credentialLifetime": credentialLifetime = try Self.seconds(string(value, key), key)
            case "credentialRefreshWindow": credentialRefreshWindow = try Self.seconds(string(value, key), key)
            case "satelliteRequestsPerMinute":
                guard case .number(let n) = value, let v = Int64(n), v > 0 else {
                    throw ConfigError("satelliteRequestsPerMinute: a positive integer")
                }
                satelliteRequestsPerMinute = v
            case "tls":
                guard case .object(let tls) = value else { throw ConfigError("tls: an object") }
                for (k, v) in tls {
                    switch k {
                    case "certFile": tlsCertFile = try string(v, "tls.certFile")
                    case "keyFile": tlsKeyFile = try string(v, "tls.keyFile")
                    default: throw ConfigError("unknown key tls.\(k)")
                    }
                }
            case "registry":
                guard case .object(let reg) = value else { throw ConfigError("registry: an object") }
                for (k, v) in reg {
                    let s = try string(v, "registry.\(k)")
                    switch k {
                    case "url": registry.url = s
                    case "kind":
                        guard ["distribution", "harbor"].contains(s) else {
                            throw ConfigError("registry.kind: distribution or harbor, not \(s)")
                        }
                        registry.kind = s
                    case "username": registry.username = s
                    case "passwordFile": registry.passwordFile = s
                    case "tokenCertFile": registry.tokenCertFile = s
                    case "tokenKeyFile": registry.tokenKeyFile = s
                    case "service": registry.service = s
                    case "issuer": registry.issuer = s
                    default: throw ConfigError("unknown key registry.\(k)")
                    }
                }
            default: throw ConfigError("unknown key \(key)")
            }
        }
    }

    mutating func apply(environment env: [String: String]) throws {
        if let v = env["GC_LISTEN"] { try setListen(v) }
        if let v = env["GC_DATABASE"] { database = v }
        if let v = env["GC_DATA_DIRECTORY"] { dataDirectory = v }
        if let v = env["GC_REGISTRY_URL"] { registry.url = v }
        if let v = env["GC_REGISTRY_KIND"] { registry.kind = v }
        if let v = env["GC_REGISTRY_USERNAME"] { registry.username = v }
        if let v = env["GC_REGISTRY_PASSWORD_FILE"] { registry.passwordFile = v }
        if let v = env["GC_REGISTRY_SERVICE"] { registry.service = v }
        if let v = env["GC_REGISTRY_ISSUER"] { registry.issuer = v }
        if let v = env["GC_TLS_CERT_FILE"] { tlsCertFile = v }
        if let v = env["GC_TLS_KEY_FILE"] { tlsKeyFile = v }
        if let v = env["GC_HEARTBEAT_INTERVAL"] { heartbeatInterval = try Self.seconds(v, "GC_HEARTBEAT_INTERVAL") }
    }

    mutating func setListen(_ text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65_535).contains(port)
        else { throw ConfigError("listen: HOST:PORT, not \(text)") }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        listenHost = host.isEmpty ? "0.0.0.0" : host
        listenPort = port
    }

    func string(_ value: JSON, _ key: String) throws -> String {
        guard case .string(let s) = value else { throw ConfigError("\(key): a string") }
        return s
    }

    /// "30s", "5m", "1h", "7d" → seconds.
    public static func seconds(_ text: String, _ key: String) throws -> Int64 {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard let last = text.last, let unit = units[last], let n = Int64(text.dropLast()), n > 0 else {
            throw ConfigError("\(key): a duration like 30s, 5m, 1h, not \(text)")
        }
        return n * unit
    }

    /// The SQLite file of a `sqlite://PATH` database, nil for PostgreSQL.
    public var sqlitePath: String? {
        guard database.hasPrefix("sqlite://") else { return nil }
        return String(database.dropFirst("sqlite://".count))
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
