import ContentStore
import OCICore
import JSONCoding
import NIOHTTP1

/// An OCI distribution error: the spec's code, the HTTP status it travels with, and a
/// message for people. Encoded as `{"errors":[{"code":…,"message":…,"detail":…}]}`.
public struct RegistryError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Equatable {
        public let value: String
        public let status: HTTPResponseStatus

        public static let blobUnknown = Code(value: "BLOB_UNKNOWN", status: .notFound)
        public static let blobUploadInvalid = Code(value: "BLOB_UPLOAD_INVALID", status: .badRequest)
        public static let blobUploadUnknown = Code(value: "BLOB_UPLOAD_UNKNOWN", status: .notFound)
        public static let digestInvalid = Code(value: "DIGEST_INVALID", status: .badRequest)
        public static let manifestBlobUnknown = Code(value: "MANIFEST_BLOB_UNKNOWN", status: .badRequest)
        public static let manifestInvalid = Code(value: "MANIFEST_INVALID", status: .badRequest)
        public static let manifestUnknown = Code(value: "MANIFEST_UNKNOWN", status: .notFound)
        public static let nameInvalid = Code(value: "NAME_INVALID", status: .badRequest)
        public static let nameUnknown = Code(value: "NAME_UNKNOWN", status: .notFound)
        public static let sizeInvalid = Code(value: "SIZE_INVALID", status: .badRequest)
        public static let unsupported = Code(value: "UNSUPPORTED", status: .methodNotAllowed)
        public static let tooManyRequests = Code(value: "TOOMANYREQUESTS", status: .tooManyRequests)
        public static let notFound = Code(value: "NOT_FOUND", status: .notFound)
        public static let unknown = Code(value: "UNKNOWN", status: .internalServerError)
        /// The store's publish policy refused the content (the trust policy).
        public static let denied = Code(value: "DENIED", status: .forbidden)
    }

    public var code: Code
    public var message: String
    /// Overrides the code's usual status (416 for an out-of-order chunk, 413 for a too large manifest).
    public var status: HTTPResponseStatus
    public var headers: [(String, String)]

    public init(_ code: Code, _ message: String, status: HTTPResponseStatus? = nil, headers: [(String, String)] = []) {
        self.code = code
        self.message = message
        self.status = status ?? code.status
        self.headers = headers
    }

    public var description: String { "\(code.value): \(message)" }

    var json: [UInt8] {
        struct Body: Encodable {
            struct Item: Encodable {
                let code: String
                let message: String
            }
            let errors: [Item]
        }
        let body = Body(errors: [.init(code: code.value, message: message)])
        return (try? JSONCoder.encode(body)) ?? Array(#"{"errors":[{"code":"UNKNOWN","message":"error"}]}"#.utf8)
    }

    /// Maps a store failure to what the client sees: a full disk is 507, anything else 500.
    /// The message names the failed operation but not the server's paths.
    static func storage(_ error: any Error) -> RegistryError {
        if let posix = error as? PosixError, posix.isNoSpace {
            return RegistryError(.unknown, "the registry's disk is full", status: .insufficientStorage)
        }
        if let posix = error as? PosixError {
            return RegistryError(.unknown, "storage error: \(posix.operation) failed (errno \(posix.code))")
        }
        return RegistryError(.unknown, "storage error: \(error)")
    }
}
