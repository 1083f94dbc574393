import Hummingbird
import JSONCoding

/// An error the API answers with `{"message", "code"}` and a 4xx status.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code) \(message)" }

    public static func badRequest(_ m: String) -> APIError { APIError(.badRequest, m) }
    public static func notFound(_ m: String) -> APIError { APIError(.notFound, m) }
    public static func conflict(_ m: String) -> APIError { APIError(.conflict, m) }
    public static func forbidden(_ m: String) -> APIError { APIError(.forbidden, m) }
    public static func unauthorized(_ m: String) -> APIError { APIError(.unauthorized, m) }
    public static func locked(_ m: String) -> APIError { APIError(.tooManyRequests, m) }
    public static func tooMany(_ m: String) -> APIError { APIError(.tooManyRequests, m) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = (try? JSONCoder.encode(APIErrorBody(message: message, code: Int(status.code)))) ?? []
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
