import JSONCoding
import NIOPosix
import Synchronization
import ContentStore
import OCICore

/// The upstream registry (Harbor or any OCI registry) over libcurl, the first
/// ``ContentSource``: anonymous, Basic and bearer-token auth, manifests in memory (bounded),
/// blobs streamed straight into the caller's ingest from its offset, under one shared
/// bandwidth cap.
///
/// Blocking transfers run on the client's own thread pool; a Swift task cancellation sets the
/// transfer's cancel flag, which curl checks at least once a second.
public final class UpstreamClient: Sendable {
    public struct Configuration: Sendable {
        /// `scheme://host[:port]`.
        public var baseURL: String
        public var username: String?
        public var password: String?
        public var caFile: String?
        public var insecure: Bool
        public var connectTimeout: Int64
        public var stallTimeout: Int64
        public var bufferSize: Int
        /// Threads for blocking transfers (the sync concurrency plus room for small requests).
        public var threads: Int

        public init(
            baseURL: String, username: String? = nil, password: String? = nil, caFile: String? = nil, insecure: Bool = false,
            connectTimeout: Int64 = 15_000_000_000, stallTimeout: Int64 = 60_000_000_000, bufferSize: Int = 65536, threads: Int = 4
        ) {
            self.baseURL = baseURL
            self.username = username
            self.password = password
            self.caFile = caFile
            self.insecure = insecure
            self.connectTimeout = connectTimeout
            self.stallTimeout = stallTimeout
            self.bufferSize = bufferSize
            self.threads = threads
        }
    }

    public let configuration: Configuration
    public let limiter: BandwidthLimiter
    private let pool: NIOThreadPool
    private let auth: Mutex<AuthState>

    /// Bytes received from the upstream (body bytes, all requests).
    private let received = Atomic<Int64>(0)
    private let credentialRejections = Atomic<Int64>(0)

    struct AuthState {
        /// Bearer tokens by scope, with their expiry (monotonic ns).
        var tokens: [String: (token: String, expires: Int64)] = [:]
        /// The upstream asked for Basic auth.
        var useBasic = false
    }

    public init(configuration: Configuration, limiter: BandwidthLimiter) {
        self.configuration = configuration
        self.limiter = limiter
        pool = NIOThreadPool(numberOfThreads: max(1, configuration.threads))
        pool.start()
        auth = Mutex(AuthState())
    }

    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    public var bytesReceived: Int64 { received.load(ordering: .relaxed) }
    /// Times the registry (or its token server) answered 401 to our credentials: the fleet
    /// link then refreshes them once.
    public var credentialRejectionCount: Int64 { credentialRejections.load(ordering: .relaxed) }

    private var options: CurlTransfer.Options {
        var options = CurlTransfer.Options()
        options.connectTimeout = configuration.connectTimeout
        options.stallTimeout = configuration.stallTimeout
        options.caFile = configuration.caFile
        options.insecure = configuration.insecure
        options.bufferSize = configuration.bufferSize
        return options
    }

    /// Runs a blocking transfer on the pool; task cancellation cancels it.
    private func blocking<T: Sendable>(_ body: @escaping @Sendable (CancelFlag) throws -> T) async throws -> T {
        let flag = CancelFlag()
        return try await withTaskCancellationHandler {
            try await pool.runIfActive { try body(flag) }
        } onCancel: {
            flag.set()
        }
    }

    // MARK: Auth

    private var basicHeader: String? {
        guard let username = configuration.username else { return nil }
        let raw = Array("\(username):\(configuration.password ?? "")".utf8)
        return "Authorization: Basic \(Base64.encode(raw))"
    }

    private func authHeader(scope: String) -> String? {
        let now = MonotonicClock.now()
        return auth.withLock { state in
            if let cached = state.tokens[scope], cached.expires > now {
                return "Authorization: Bearer \(cached.token)"
            }
            return state.useBasic ? basicHeader : nil
        }
    }

    /// Reacts to a 401: fetches a bearer token for `scope`, or switches to Basic.
    ///
    /// Throws ``SyncError`` (refused) when no credentials can satisfy the challenge.
    private func authenticate(challenge: String?, scope: String, cancel: CancelFlag) throws {
        guard let challenge, let parsed = Challenge(challenge) else {
            throw SyncError(.refused, "upstream refused the request (401) and sent no usable WWW-Authenticate challenge")
        }
        if parsed.scheme == "basic" {
            guard configuration.username != nil else {
                throw SyncError(.refused, "upstream requires credentials: set upstream.username and passwordFile")
            }
            let already = auth.withLock { state in
                defer { state.useBasic = true }
                return state.useBasic
            }
            if already {
                credentialRejections.add(1, ordering: .relaxed)
                throw SyncError(.refused, "upstream rejected the credentials of \(configuration.username ?? "")")
            }
            return
        }
        guard parsed.scheme == "bearer", let realm = parsed.parameters["realm"] else {
            throw SyncError(.refused, "upstream asks for unsupported authentication \"\(parsed.scheme)\"")
        }
        var query: [String] = []
        if let service = parsed.parameters["service"] { query.append("service=\(PercentEncoding.encode(service))") }
        query.append("scope=\(PercentEncoding.encode(parsed.parameters["scope"] ?? scope))")
        let url = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
        var options = self.options
        if let basic = basicHeader { options.headers.append(basic) }
        var body: [UInt8] = []
        let response = try CurlTransfer.perform(url: url, options: options, cancelled: cancel) { bytes in
            guard body.count + bytes.count <= 1 << 20 else { throw SyncError(.refused, "token response too large") }
            body.append(contentsOf: bytes)
        }
        guard response.status == 200 else {
            if response.status == 401 { credentialRejections.add(1, ordering: .relaxed) }
            throw SyncError(
                .refused,
                "token server \(realm) refused \(configuration.username.map { "user \($0)" } ?? "anonymous access") (HTTP \(response.status))")
        }
        struct TokenResponse: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Int?
        }
        guard let decoded = try? JSONCoder.decode(TokenResponse.self, from: body),
            let token = decoded.token ?? decoded.access_token, !token.isEmpty
        else {
            throw SyncError(.refused, "token server \(realm) sent no token")
        }
        let lifetime = Int64(max(30, decoded.expires_in ?? 60) - 10) * 1_000_000_000
        let expires = MonotonicClock.now() + lifetime
        auth.withLock { $0.tokens[scope] = (token, expires) }
    }

    // MARK: Requests

    public struct Fetched: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var contentType: String?
        public var digestHeader: String?
        /// `Content-Length` as announced (a HEAD's only body).
        public var contentLength: Int64? = nil
    }

    /// GETs a small document (a manifest, a state file) of at most `limit` bytes.
    ///
    /// Throws ``SyncError``: link (retryable), refused, or corrupt when it is too large.
    public func fetch(_ path: String, scope: String, accept: [String] = [], method: String = "GET", limit: Int = Manifest.maxSize)
        async throws -> Fetched
    {
        let url = configuration.baseURL + path
        return try await blocking { cancel in
            var authRetried = false
            while true {
                var options = self.options
                options.method = method
                if !accept.isEmpty { options.headers.append("Accept: \(accept.joined(separator: ", "))") }
                if let header = self.authHeader(scope: scope) { options.headers.append(header) }
                var body: [UInt8] = []
                var tooLarge = false
                let response: CurlTransfer.Response
                do {
                    response = try CurlTransfer.perform(url: url, options: options, cancelled: cancel) { bytes in
                        guard body.count + bytes.count <= limit else {
                            tooLarge = true
                            throw SyncError(.corrupt, "\(path) is larger than \(limit) bytes")
                        }
                        body.append(contentsOf: bytes)
                    }
                } catch let failure as CurlTransfer.Failure {
                    throw SyncError(failure.isTransient ? .link : .refused, "\(failure)")
                } catch is CancellationError {
                    throw SyncError(.cancelled, "cancelled")
                }
                _ = tooLarge
                self.received.wrappingAdd(Int64(body.count), ordering: .relaxed)
                if response.status == 401 {
                    // Once to authenticate; a second 401 means the credentials are wrong.
                    try self.authenticate(challenge: response.header("www-authenticate"), scope: scope, cancel: cancel)
                    guard !authRetried else {
                        throw SyncError(.refused, "upstream rejected the credentials of \(self.configuration.username ?? "anonymous") for \(path)")
                    }
                    authRetried = true
                    continue
                }
                return Fetched(
                    status: response.status, body: body, contentType: response.header("content-type"),
                    digestHeader: response.header("docker-content-digest"),
                    contentLength: response.header("content-length").flatMap { Int64($0) })
            }
        }
    }

    /// One transfer of blob `digest` of `repository` into `ingest`, from its offset (with
    /// `Range`), re-authenticating once on a 401.
    ///
    /// Throws ``SyncError``: link (an interrupted transfer, a range answered at the wrong
    /// offset, HTTP 408/429/5xx, 416 after the ingest was reset), corrupt (more bytes than
    /// announced), refused, notFound, storage or cancelled.
    public func fetchBlob(
        _ digest: Digest, size: Int64, repository: RepositoryName, into ingest: Ingest, progress: @escaping @Sendable (Int64) -> Void
    ) async throws {
        try await streamBlob(digest, size: size, repository: repository, to: ingest, progress: progress)
    }

    /// The same transfer into any ``BlobSink`` (a bundle's tar entry as well as an ingest).
    public func streamBlob(
        _ digest: Digest, size: Int64, repository: RepositoryName, to ingest: any BlobSink,
        progress: @escaping @Sendable (Int64) -> Void
    ) async throws {
        let path = "/v2/\(repository)/blobs/\(digest)"
        let scope = "repository:\(repository):pull"
        try await blocking { cancel in
            var authRetried = false
            while true {
                if cancel.isSet { throw SyncError(.cancelled, "cancelled") }
                let start = ingest.offset
                var options = self.options
                if start > 0 { options.headers.append("Range: bytes=\(start)-") }
                if let header = self.authHeader(scope: scope) { options.headers.append(header) }
                var refusal: SyncError?
                let response: CurlTransfer.Response
                do {
                    response = try CurlTransfer.perform(
                        url: self.configuration.baseURL + path, options: options, cancelled: cancel,
                        onHeaders: { response in
                            switch response.status {
                            case 206:
                                guard let range = response.header("content-range"), ContentRange(range)?.start == start else {
                                    refusal = SyncError(.link, "upstream answered a range request at the wrong offset")
                                    try? ingest.reset()
                                    return .reject
                                }
                                return .accept
                            case 200:
                                if start > 0 {
                                    // The server ignores Range: take the whole blob again.
                                    do { try ingest.reset() } catch { return .reject }
                                }
                                return .accept
                            default:
                                return .reject
                            }
                        },
                        onBody: { bytes in
                            self.limiter.consume(bytes.count)
                            guard size < 0 || ingest.offset + Int64(bytes.count) <= size else {
                                throw SyncError(.corrupt, "upstream sent more than the \(size) bytes announced for \(digest)")
                            }
                            do {
                                try ingest.write(bytes)
                            } catch {
                                throw SyncError(.storage, "cannot write \(digest): \(error)")
                            }
                            self.received.wrappingAdd(Int64(bytes.count), ordering: .relaxed)
                            progress(ingest.offset)
                        })
                } catch let error as SyncError {
                    throw error
                } catch is CancellationError {
                    throw SyncError(.cancelled, "cancelled")
                } catch let failure as CurlTransfer.Failure {
                    guard failure.isTransient else { throw SyncError(.refused, "\(failure)") }
                    throw SyncError(.link, "\(failure)")
                }
                if let refusal { throw refusal }
                switch response.status {
                case 200, 206:
                    return
                case 401 where !authRetried:
                    authRetried = true
                    try self.authenticate(challenge: response.header("www-authenticate"), scope: scope, cancel: cancel)
                case 404:
                    throw SyncError(.notFound, "upstream has no blob \(digest) in \(repository)")
                case 416:
                    // Our offset is past the end: the partial file is not this blob's prefix.
                    try? ingest.reset()
                    throw SyncError(.link, "upstream rejects the range of \(digest)")
                case 408, 429, 500...599:
                    throw SyncError(.link, "upstream answered HTTP \(response.status) for blob \(digest)")
                default:
                    throw SyncError(.refused, "upstream answered HTTP \(response.status) for blob \(digest)")
                }
            }
        }
    }
}

extension UpstreamClient: ContentSource {
    public var name: String { "upstream" }

    public func manifest(_ repository: RepositoryName, reference: Reference) async throws -> ImagePublisher.ManifestContent {
        try await ManifestFetcher(client: self).fetch(repository, reference: reference)
    }

    public func manifestDigest(_ repository: RepositoryName, tag: String) async throws -> Digest? {
        try await ManifestFetcher(client: self).headDigest(repository, tag: tag)
    }

    public func referrers(_ repository: RepositoryName, of digest: Digest) async throws -> [UInt8]? {
        let answer = try await fetch(
            "/v2/\(repository)/referrers/\(digest)", scope: "repository:\(repository):pull", limit: Manifest.maxSize)
        switch answer.status {
        case 200: return answer.body
        // docker-registry 2.x has no referrers API: 404 (or 400/405 from some proxies) is "none".
        case 400, 404, 405: return nil
        case 408, 429, 500...599: throw SyncError(.link, "upstream answered HTTP \(answer.status) for the referrers of \(digest)")
        default: throw SyncError(.refused, "upstream answered HTTP \(answer.status) for the referrers of \(digest)")
        }
    }

    public func smallBlob(_ repository: RepositoryName, digest: Digest, limit: Int) async throws -> [UInt8] {
        let blob = try await fetch("/v2/\(repository)/blobs/\(digest)", scope: "repository:\(repository):pull", limit: limit)
        switch blob.status {
        case 200: return blob.body
        case 404: throw SyncError(.notFound, "upstream has no blob \(digest) in \(repository)")
        case 408, 429, 500...599: throw SyncError(.link, "upstream answered HTTP \(blob.status) for blob \(digest)")
        default: throw SyncError(.refused, "upstream answered HTTP \(blob.status) for blob \(digest)")
        }
    }
}

/// `bytes <start>-<end>/<total>`.
struct ContentRange {
    var start: Int64
    var end: Int64
    var total: Int64?

    init?(_ text: String) {
        var rest = Substring(text.trimmed(leading: false))
        guard rest.lowercased().hasPrefix("bytes ") else { return nil }
        rest = rest.dropFirst(6)
        let parts = rest.split(separator: "/", maxSplits: 1)
        let range = parts[0].split(separator: "-", maxSplits: 1)
        guard range.count == 2, let start = Int64(range[0]), let end = Int64(range[1]) else { return nil }
        self.start = start
        self.end = end
        self.total = parts.count > 1 ? Int64(parts[1]) : nil
    }
}

/// A `WWW-Authenticate` challenge: scheme and parameters.
struct Challenge {
    var scheme: String
    var parameters: [String: String] = [:]

    init?(_ header: String) {
        let trimmed = header.trimmed(trailing: false)
        guard let space = trimmed.firstIndex(of: " ") else {
            guard !trimmed.isEmpty else { return nil }
            scheme = trimmed.lowercased()
            return
        }
        scheme = trimmed[..<space].lowercased()
        var rest = Substring(trimmed[trimmed.index(after: space)...])
        while !rest.isEmpty {
            rest = rest.drop(while: { $0 == " " || $0 == "," })
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].lowercased().trimmed(leading: false)
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let c = rest.first, c != "\"" {
                    if c == "\\" { rest = rest.dropFirst() }
                    if let next = rest.first { value.append(next) }
                    rest = rest.dropFirst()
                }
                rest = rest.dropFirst()
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            parameters[key] = value
        }
    }
}

public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(table[Int(b0 >> 2)])
            out.append(table[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? table[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? table[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
