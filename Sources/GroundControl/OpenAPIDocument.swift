import Hummingbird
import JSONCoding

/// The OpenAPI document of everything ground-control serves (docs/ground-control.openapi.json,
/// compiled in through SwiftPM's `embedInCode`, so the binary needs no file beside it).
enum OpenAPIDocument {
    static var bytes: [UInt8] { PackageResources.openapi_json }

    static func response() -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// `(segments, methods)` of each path of the OpenAPI document; `{x}` is one any segment.
    static let documentedPaths: [([Substring], [String])] = {
        guard case .object(let paths)? = (try? JSON.parse(OpenAPIDocument.bytes))?["paths"] else { return [] }
        return paths.map { path, item in
            var methods: [String] = []
            if case .object(let operations) = item {
                methods = operations.map { $0.0.uppercased() }.filter { ["GET", "PUT", "POST", "DELETE", "PATCH"].contains($0) }
            }
            return (path.split(separator: "/"), methods.sorted())
        }
    }()

    /// The methods the document names for `path`; nil when it names no such path. As in
    /// the router, a literal segment wins over a parameter (`/api/groups/satellite` is not
    /// `/api/groups/{group}`).
    static func documentedMethods(path: String) -> [String]? {
        let segments = path.split(separator: "/")
        var best = -1
        var found: Set<String> = []
        for (template, methods) in documentedPaths where template.count == segments.count {
            guard zip(template, segments).allSatisfy({ t, s in t.hasPrefix("{") || t == s }) else { continue }
            let literals = template.filter { !$0.hasPrefix("{") }.count
            if literals > best { (best, found) = (literals, []) }
            if literals == best { found.formUnion(methods) }
        }
        return found.isEmpty ? nil : found.sorted()
    }
}
