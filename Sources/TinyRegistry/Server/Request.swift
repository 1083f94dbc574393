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
            guard let key = percentDecode(parts[0]) else { continue }
            let value = parts.count > 1 ? percentDecode(parts[1]) : ""
            if let value { result[key, default: []].append(value) }
        }
        return result
    }

    /// Decodes %XX escapes; nil for malformed escapes or invalid UTF-8.
    static func percentDecode(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == 0x25 {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }

    public var contentLength: Int64? {
        headers.first(name: "content-length").flatMap { Int64($0) }
    }
}
