import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// Ground Control's outgoing HTTP: state pushes to the central registry, Harbor's API, and the
/// CLI's calls to a running ground-control. One AsyncHTTPClient for the process (NIO, the
/// system's CA store), every answer read into a bounded buffer.
public enum OutboundHTTP {
    /// A peer that refuses the connection fails the call at once (AsyncHTTPClient would
    /// otherwise retry until the request's deadline, holding an API answer for 30 s); a peer
    /// that does not answer fails it after 10 s.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(10)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public struct Answer: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]

        /// The first value of header `name`.
        public func header(_ name: String) -> String? { headers.first(name: name) }

        /// The first `count` bytes of the body as text, for error messages.
        public func bodyPrefix(_ count: Int = 300) -> String {
            String(decoding: body.prefix(count), as: UTF8.self)
        }
    }

    /// Sends one request and reads its answer (at most `limit` bytes of body).
    ///
    /// Throws what AsyncHTTPClient throws for a bad URL, a refused connection, a timeout or an
    /// answer over `limit`.
    public static func send(
        _ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: TimeAmount = .seconds(30), limit: Int = 4 << 20
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response = try await client.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: limit)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Array(buffer.readableBytesView))
    }
}
