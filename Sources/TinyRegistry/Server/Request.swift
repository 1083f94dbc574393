import ContentStore
import OCICore
import NIOHTTP1

/// What a handler needs of an HTTP request: method, decoded path, query and headers.
public struct Request: Sendable {
    public var method: HTTPMethod
    /// The path as sent, without the query.
    public var path: String
    public var query: [String: String]
    /// Every value of every query parameter, for parameters that repeat (`tag`).
    public var queryValues: [String: [String]] = [:]
    public var headers: HTTPHeaders

    public init(head: HTTPRequestHead) {
        method = head.method
        headers = head.headers
        let uri = head.uri
        if let question = uri.firstIndex(of: "?") {
            path = String(uri[..<question])
            queryValues = Self.parseQuery(uri[uri.index(after: question)...])
            query = queryValues.compactMapValues(\.first)
        } else {
            path = uri
            query = [:]
        }
    }

    /// Parses `a=1&b=2&b=3`; undecodable pairs are skipped.
    static func parseQuery(_ text: Substring) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = PercentEncoding.decode(parts[0]) else { continue }
            let value = parts.count > 1 ? PercentEncoding.decode(parts[1]) : ""
            if let value { result[key, default: []].append(value) }
        }
        return result
    }

    public var contentLength: Int64? {
        headers.first(name: "content-length").flatMap { Int64($0) }
    }
}
