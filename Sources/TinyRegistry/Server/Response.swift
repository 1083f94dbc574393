import ContentStore
import OCICore
import NIOCore
import NIOHTTP1

/// What a handler answers: a small body in memory, or a byte range of an open file.
public struct Response: Sendable {
    public enum Body: Sendable {
        case none
        case bytes(ByteBuffer)
        /// A range of an open file; the server closes the descriptor when it is sent.
        case file(fd: Int32, offset: Int64, length: Int64)
        /// A range of a blob still being downloaded by the pull-through: sent as it is
        /// written; cut (no valid completion) when its transfer fails. The response holds
        /// one reader of the blob until it is sent.
        case growing(GrowingBlob, offset: Int64, length: Int64)
    }

    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: Body = .none) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ bytes: [UInt8], status: HTTPResponseStatus = .ok, contentType: String = "application/json") -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        return Response(status: status, headers: headers, body: .bytes(ByteBuffer(bytes: bytes)))
    }

    public static func error(_ error: RegistryError) -> Response {
        var response = json(error.json, status: error.status)
        for (name, value) in error.headers { response.headers.add(name: name, value: value) }
        return response
    }

    /// Closes a file body that will not be sent.
    func discard() {
        if case .file(let fd, _, _) = body { PosixFile.close(fd) }
        if case .growing(let blob, _, _) = body { blob.removeReader() }
    }
}
