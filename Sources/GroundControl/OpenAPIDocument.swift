import Hummingbird

/// The OpenAPI document of everything ground-control serves (docs/ground-control.openapi.json,
/// compiled in through SwiftPM's `embedInCode`, so the binary needs no file beside it).
enum OpenAPIDocument {
    static var bytes: [UInt8] { PackageResources.openapi_json }

    static func response() -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
