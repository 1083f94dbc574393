/// One small HTTP request with a bounded answer held in memory: Ground Control's JSON API.
///
/// It runs curl on the calling thread (blocking): callers use a thread of their own, never
/// the cooperative pool or an event loop.
public enum SmallExchange {
    public struct Request: Sendable {
        public var url: String
        public var method: String
        public var headers: [String]
        public var body: [UInt8]?
        public var caFile: String?
        public var insecure: Bool
        public var connectTimeout: Int64
        public var stallTimeout: Int64
        /// Largest answer accepted (bytes).
        public var limit: Int

        public init(
            url: String, method: String = "GET", headers: [String] = [], body: [UInt8]? = nil, caFile: String? = nil,
            insecure: Bool = false, connectTimeout: Int64 = 10_000_000_000, stallTimeout: Int64 = 30_000_000_000,
            limit: Int = 1 << 20
        ) {
            self.url = url
            self.method = method
            self.headers = headers
            self.body = body
            self.caFile = caFile
            self.insecure = insecure
            self.connectTimeout = connectTimeout
            self.stallTimeout = stallTimeout
            self.limit = limit
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        /// Seconds from a `Retry-After: <seconds>` header.
        public var retryAfter: Int64?

        public init(status: Int, body: [UInt8], retryAfter: Int64? = nil) {
            self.status = status
            self.body = body
            self.retryAfter = retryAfter
        }
    }

    /// A request that did not get an HTTP answer (connection refused, timeout, TLS).
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var message: String
        /// A link problem worth retrying later (not a TLS or configuration problem).
        public var isTransient: Bool
        public var description: String { message }
    }

    /// Performs the request; the answer's body is cut at `limit` (then it fails).
    ///
    /// Throws ``Failure`` when no HTTP answer came, CancellationError when `cancelled` was set.
    public static func perform(_ request: Request, cancelled: CancelFlag = CancelFlag()) throws -> Response {
        var options = CurlTransfer.Options()
        options.method = request.method
        options.headers = request.headers
        options.body = request.body
        options.caFile = request.caFile
        options.insecure = request.insecure
        options.connectTimeout = request.connectTimeout
        options.stallTimeout = request.stallTimeout
        options.followRedirects = false
        options.bufferSize = 16384
        let limit = request.limit
        final class Sink: @unchecked Sendable {  // used by curl's callbacks on this thread only
            var bytes: [UInt8] = []
        }
        let sink = Sink()
        do {
            let response = try CurlTransfer.perform(url: request.url, options: options, cancelled: cancelled) { chunk in
                guard sink.bytes.count + chunk.count <= limit else {
                    throw Failure(message: "\(request.url.redactingQuery()): answer larger than \(limit) bytes", isTransient: false)
                }
                sink.bytes.append(contentsOf: chunk)
            }
            let retryAfter = response.header("retry-after").flatMap { Int64(String($0.drop { $0 == " " || $0 == "\t" })) }
            return Response(status: response.status, body: sink.bytes, retryAfter: retryAfter)
        } catch let failure as CurlTransfer.Failure {
            throw Failure(message: failure.message, isTransient: failure.isTransient)
        }
    }
}
