import NIOHTTP1
import Testing

@testable import ContentStore
@testable import OCICore
@testable import TinyRegistry

@Suite struct RouteTests {
    let hex = String(repeating: "a", count: 64)

    @Test func apiPaths() throws {
        #expect(try Route.parse(path: "/v2/") == .base)
        #expect(try Route.parse(path: "/v2/_catalog") == .catalog)
        let name = try #require(RepositoryName("a/blobs/b"))
        #expect(try Route.parse(path: "/v2/a/blobs/b/tags/list") == .tags(name))
        #expect(try Route.parse(path: "/v2/a/blobs/b/blobs/uploads/") == .uploads(name))
        #expect(try Route.parse(path: "/v2/a/blobs/b/blobs/uploads/xyz") == .upload(name, "xyz"))
        let digest = try #require(Digest("sha256:\(hex)"))
        #expect(try Route.parse(path: "/v2/a/blobs/b/blobs/sha256:\(hex)") == .blob(name, digest))
        #expect(try Route.parse(path: "/v2/a/blobs/b/blobs/sha256%3A\(hex)") == .blob(name, digest))
        #expect(try Route.parse(path: "/v2/a/blobs/b/manifests/v1") == .manifest(name, .tag("v1")))
        #expect(try Route.parse(path: "/v2/a/blobs/b/referrers/sha256:\(hex)") == .referrers(name, digest))
    }

    @Test(arguments: [
        "/v2/../etc/passwd/manifests/latest", "/v2/a/../../manifests/latest", "/v2/%2e%2e/manifests/latest",
        "/v2/a%2F..%2F..%2Fb/manifests/latest", "/v2/a/%2e%2e/blobs/uploads/", "/v2//manifests/x",
        "/v2/a%00/manifests/x", "/v2/a%zz/manifests/x",
    ])
    func traversalIsRejected(path: String) {
        #expect(throws: RegistryError.self) { try Route.parse(path: path) }
    }

    @Test func queries() {
        let request = Request(head: HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/v2/a/manifests/sha256:x?tag=a&tag=b&ns=docker.io%3A443"))
        #expect(request.queryValues["tag"] == ["a", "b"])
        #expect(request.query["ns"] == "docker.io:443")
    }

    @Test func ranges() {
        #expect(ByteRange.parse("bytes=0-9", size: 100) == .range(start: 0, end: 9))
        #expect(ByteRange.parse("bytes=90-", size: 100) == .range(start: 90, end: 99))
        #expect(ByteRange.parse("bytes=-10", size: 100) == .range(start: 90, end: 99))
        #expect(ByteRange.parse("bytes=50-500", size: 100) == .range(start: 50, end: 99))
        #expect(ByteRange.parse("bytes=100-", size: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=9-3", size: 100) == .unsatisfiable)
        #expect(ByteRange.parse("items=0-1", size: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=0-1,5-6", size: 100) == .full)
        #expect(ByteRange.parse("bytes=3000000000-", size: 4_000_000_000) == .range(start: 3_000_000_000, end: 3_999_999_999))
    }
}
