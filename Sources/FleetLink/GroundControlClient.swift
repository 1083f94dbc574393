import Fleet
import JSONCoding
import NIOPosix
import Sync
import ContentStore
import OCICore

/// Ground Control's satellite-facing API (Harbor Satellite's routes): ZTR, heartbeat,
/// credential refresh. Requests run on a thread of their own, so a slow or unreachable
/// Ground Control never holds up serving or syncing.
public final class GroundControlClient: Sendable {
    public struct Configuration: Sendable {
        /// `https://gc.example.com` (no trailing slash).
        public var url: String
        public var caFile: String?
        public var insecure: Bool
        public var connectTimeout: Int64
        public var stallTimeout: Int64

        public init(url: String, caFile: String? = nil, insecure: Bool = false, connectTimeout: Int64 = 10_000_000_000,
                    stallTimeout: Int64 = 30_000_000_000) {
            var url = url
            while url.hasSuffix("/") { url.removeLast() }
            self.url = url
            self.caFile = caFile
            self.insecure = insecure
            self.connectTimeout = connectTimeout
            self.stallTimeout = stallTimeout
        }
    }

    /// Why a call failed. Messages never carry the token or a credential.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public enum Kind: Sendable, Equatable {
            /// No answer (connection refused, timeout, TLS); retry later.
            case unreachable
            /// Ground Control answered 5xx or 429; retry later (not before `retryAfter`).
            case unavailable
            /// 401/403: the token or credential is not (or no longer) accepted.
            case unauthorized
            /// Any other refusal or an answer that is not what the contract says.
            case refused
        }
        public var kind: Kind
        public var message: String
        public var status: Int?
        public var retryAfter: Int64?
        public var description: String { message }

        public var isRetryable: Bool { kind == .unreachable || kind == .unavailable }
    }

    public let configuration: Configuration
    private let pool: NIOThreadPool

    public init(configuration: Configuration) {
        self.configuration = configuration
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    /// One request; `label` replaces the URL in messages (the GET form of ZTR carries the
    /// token in its path).
    func exchange(
        _ method: String, _ path: String, label: String, body: [UInt8]? = nil, basic: RegistryCredentials? = nil
    ) async throws -> SmallExchange.Response {
        var headers = ["Accept: application/json"]
        if body != nil { headers.append("Content-Type: application/json") }
        if let basic {
            headers.append("Authorization: Basic \(Base64.encode(Array("\(basic.username):\(basic.password)".utf8)))")
        }
        let request = SmallExchange.Request(
            url: configuration.url + path, method: method, headers: headers, body: body, caFile: configuration.caFile,
            insecure: configuration.insecure, connectTimeout: configuration.connectTimeout,
            stallTimeout: configuration.stallTimeout, limit: 1 << 20)
        let flag = CancelFlag()
        do {
            return try await withTaskCancellationHandler {
                try await pool.runIfActive { try SmallExchange.perform(request, cancelled: flag) }
            } onCancel: {
                flag.set()
            }
        } catch let failure as SmallExchange.Failure {
            // curl's message names the URL; keep only what follows it.
            // "<url>: <reason>": keep only the reason (the URL may carry the token).
            let message = Array(failure.message.utf8)
            var detail = "no answer"
            if let split = (0..<max(0, message.count - 1)).first(where: { message[$0] == 0x3a && message[$0 + 1] == 0x20 }) {
                detail = String(decoding: message[(split + 2)...], as: UTF8.self)
            }
            throw Failure(kind: .unreachable, message: "\(label): Ground Control unreachable: \(detail)")
        }
    }

    static func failure(_ label: String, _ response: SmallExchange.Response) -> Failure {
        let kind: Failure.Kind =
            switch response.status {
            case 401, 403: .unauthorized
            case 429, 500...599: .unavailable
            default: .refused
            }
        var detail = ""
        if let json = try? JSON.parse(response.body), let text = Self.errorText(json) {
            detail = ": \(text.prefix(200))"
        }
        return Failure(
            kind: kind, message: "\(label): Ground Control answered HTTP \(response.status)\(detail)", status: response.status,
            retryAfter: response.retryAfter)
    }

    /// `{"error": "..."}`, `{"error": {"message": "..."}}` or `{"message": "..."}`.
    static func errorText(_ json: JSON) -> String? {
        guard case .object(let members) = json else { return nil }
        for (key, value) in members where key == "error" || key == "message" {
            if case .string(let text) = value { return text }
            if let nested = errorText(value) { return nested }
        }
        return nil
    }

    /// Zero-touch registration: `POST /satellites/ztr {"token"}`, or on 404/405 the older
    /// `GET /satellites/ztr/{token}`.
    ///
    /// Throws ``Failure``; an answer without state or credentials is `.refused`.
    public func register(token: String) async throws -> ZTRResult {
        let label = "ZTR"
        var response = try await exchange("POST", "/satellites/ztr", label: label, body: try JSONCoder.encode(ZTRRequest(token: token)))
        if response.status == 404 || response.status == 405 {
            response = try await exchange("GET", "/satellites/ztr/\(percentEncodePath(token))", label: label)
        }
        guard response.status == 200 || response.status == 201 else { throw Self.failure(label, response) }
        guard let result = try? JSONCoder.decode(ZTRResult.self, from: response.body), result.isComplete else {
            throw Failure(kind: .refused, message: "ZTR: Ground Control's answer lacks the state or the registry credentials")
        }
        return result
    }

    /// The heartbeat: `POST /satellites/sync` with Basic auth of the registry credentials.
    ///
    /// Throws ``Failure``.
    public func heartbeat(_ heartbeat: Heartbeat, credentials: RegistryCredentials) async throws -> HeartbeatReply {
        let label = "heartbeat"
        let response = try await exchange("POST", "/satellites/sync", label: label, body: try JSONCoder.encode(heartbeat), basic: credentials)
        guard (200...204).contains(response.status) else { throw Self.failure(label, response) }
        if response.body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return HeartbeatReply() }
        guard let reply = try? JSONCoder.decode(HeartbeatReply.self, from: response.body) else {
            throw Failure(kind: .refused, message: "heartbeat: Ground Control's answer is not {\"events\", \"actions\"}")
        }
        return reply
    }

    /// `POST /satellites/refresh`, or `/sat/refresh` where the first is 404/405.
    ///
    /// Throws ``Failure``.
    public func refresh(credentials: RegistryCredentials) async throws -> CredentialRefreshResult {
        let label = "credential refresh"
        var response = try await exchange("POST", "/satellites/refresh", label: label, body: Array("{}".utf8), basic: credentials)
        if response.status == 404 || response.status == 405 {
            response = try await exchange("POST", "/sat/refresh", label: label, body: Array("{}".utf8), basic: credentials)
        }
        guard response.status == 200 || response.status == 201 else { throw Self.failure(label, response) }
        guard let result = try? JSONCoder.decode(CredentialRefreshResult.self, from: response.body), !result.secret.isEmpty else {
            throw Failure(kind: .refused, message: "credential refresh: Ground Control's answer holds no secret")
        }
        return result
    }

    func percentEncodePath(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += "%" + Digest.hexByte(byte).uppercased()
            }
        }
        return out
    }
}
