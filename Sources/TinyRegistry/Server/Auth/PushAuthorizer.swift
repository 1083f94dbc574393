import JSONCoding
import NIOCore
import NIOHTTP1
import Synchronization

/// Who may change the registry's content (`registry.push`): every request that is not a
/// read (POST, PUT, PATCH, DELETE) passes here before its body is read. Pulls stay open.
public final class PushAuthorizer: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Clients on 127.0.0.0/8 or ::1 only (the default).
        case loopback
        /// HTTP Basic against the htpasswd users, from anywhere.
        case authenticated
        /// Anyone who can reach the listener (the old behaviour; for labs).
        case anyone
        /// No client: only the agent's own sources change content.
        case nobody
    }

    /// What to do with a request, decided without blocking.
    enum Decision {
        case allow
        case deny(RegistryError)
        /// Credentials to check with ``verify(user:password:client:)`` on the blocking pool.
        case verify(user: String, password: [UInt8], client: String)
    }

    public let mode: Mode
    public let realm: String
    /// Replaced by ``replaceUsers(_:)`` (SIGHUP re-reads the htpasswd file).
    private let users: Mutex<Htpasswd?>
    /// Consecutive failures per client address, for the growing delay; bounded in size.
    private let failures = Mutex<[String: Int]>([:])
    /// The delay of a refused password: `baseDelay` × 2^(failures−1), at most `maxDelay`.
    let baseDelay: TimeAmount
    let maxDelay: TimeAmount
    static let maxTrackedClients = 4096

    /// `users` is required for `authenticated`.
    public init(
        mode: Mode, users: Htpasswd? = nil, realm: String = "satellite-lite",
        baseDelay: TimeAmount = .milliseconds(500), maxDelay: TimeAmount = .seconds(8)
    ) {
        self.mode = mode
        self.users = Mutex(users)
        self.realm = realm
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// New htpasswd users for the checks that start from now on (a reloaded file).
    public func replaceUsers(_ users: Htpasswd) {
        self.users.withLock { $0 = users }
    }

    static func isWrite(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS: false
        default: true
        }
    }

    var challenge: RegistryError {
        RegistryError(
            .unauthorized, "authentication required to push to this registry",
            headers: [("WWW-Authenticate", "Basic realm=\"\(realm)\", charset=\"UTF-8\"")])
    }

    func decide(_ request: Request, route: Route, remote: SocketAddress?) -> Decision {
        // A peer's claim (a POST) proves the site secret instead (RegistryAPI+Peers); it
        // changes no content.
        if case .peerClaim = route { return .allow }
        let isBase: Bool
        if case .base = route { isBase = true } else { isBase = false }
        guard Self.isWrite(request.method) || (isBase && mode == .authenticated) else { return .allow }
        switch mode {
        case .anyone:
            return .allow
        case .nobody:
            return .deny(RegistryError(.denied, "this registry accepts no pushes or deletes (registry.push is nobody)"))
        case .loopback:
            guard let remote, Self.isLoopback(remote) else {
                return .deny(
                    RegistryError(.denied, "pushes and deletes are accepted from this machine only (registry.push is loopback)"))
            }
            return .allow
        case .authenticated:
            let headers = request.headers[canonicalForm: "authorization"]
            guard let header = headers.first else {
                // The version check answers 401 so that clients (containers/image, docker)
                // learn of the Basic challenge and send credentials with their pushes.
                return .deny(challenge)
            }
            guard headers.count == 1, let (user, password) = Self.basicCredentials(String(header)) else {
                return .deny(RegistryError(.unauthorized, "malformed Authorization header: expected Basic base64(user:password)", headers: challenge.headers))
            }
            if isBase && !Self.isWrite(request.method) && user.isEmpty && password.isEmpty {
                return .allow  // anonymous: what containers/image sends for a pull after the challenge
            }
            return .verify(user: user, password: password, client: remote.map(Self.clientKey) ?? "unknown")
        }
    }

    /// Checks credentials (bcrypt: tens of milliseconds; call on the blocking pool). On a
    /// refusal, the delay the answer must wait, growing with the client's recent failures.
    func verify(user: String, password: [UInt8], client: String) -> (RegistryError, delay: TimeAmount)? {
        if let users = users.withLock({ $0 }), users.verify(user: user, password: password) {
            _ = failures.withLock { $0.removeValue(forKey: client) }
            return nil
        }
        let count = failures.withLock { table -> Int in
            if table.count >= Self.maxTrackedClients, table[client] == nil { table.removeAll(keepingCapacity: true) }
            let next = min((table[client] ?? 0) + 1, 16)
            table[client] = next
            return next
        }
        let factor = Int64(1) << Int64(min(count - 1, 10))
        let delay = TimeAmount.nanoseconds(min(baseDelay.nanoseconds * factor, maxDelay.nanoseconds))
        return (RegistryError(.unauthorized, "wrong user name or password", headers: challenge.headers), delay)
    }

    /// Failures recorded for `client`, for tests and status.
    func failureCount(_ client: String) -> Int { failures.withLock { $0[client] ?? 0 } }

    /// `Basic <base64(user:password)>`, scheme case-insensitive; nil for anything else.
    static func basicCredentials(_ header: String) -> (String, [UInt8])? {
        guard header.utf8.count <= 4096 else { return nil }
        let parts = header.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic", let decoded = Base64.decode(parts[1]),
            let colon = decoded.firstIndex(of: UInt8(ascii: ":"))
        else { return nil }
        guard let user = String(validating: decoded[..<colon], as: UTF8.self) else { return nil }
        return (user, Array(decoded[(colon + 1)...]))
    }

    static func isLoopback(_ address: SocketAddress) -> Bool {
        if case .unixDomainSocket = address { return true }
        guard let ip = address.ipAddress?.lowercased() else { return false }
        return isLoopback(ip: ip)
    }

    /// 127.0.0.0/8, ::1, and ::ffff:127.x.y.z (an IPv4 client of a dual-stack listener).
    static func isLoopback(ip: String) -> Bool {
        if ip == "::1" || ip == "0:0:0:0:0:0:0:1" { return true }
        var v4 = Substring(ip)
        if v4.hasPrefix("::ffff:") { v4 = v4.dropFirst(7) }
        let octets = v4.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    static func clientKey(_ address: SocketAddress) -> String {
        address.ipAddress ?? "unix"
    }
}
