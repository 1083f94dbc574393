import ContentStore
import OCICore
import JSONCoding
import NIOCore
import NIOHTTP1

/// The OCI Distribution API over a ``BlobStore``. Every handler is synchronous and runs on
/// the server's blocking thread pool, never on an event loop.
public final class RegistryAPI: Sendable {
    public let store: BlobStore
    public let metrics: Metrics
    /// The store's publish step: a client's push becomes visible through it, as a sync does.
    public let publisher: ImagePublisher
    /// `registry.push`: who may push and delete.
    public let authorizer: PushAuthorizer
    /// Tags the agent owns (desired state, what the sync published): refused to client
    /// pushes and deletes whatever `authorizer` says.
    public let protectedTags: ProtectedTags
    /// The pull-through cache asked on a miss (`proxy`); nil serves the store alone.
    public let pullThrough: (any PullThrough)?
    /// The site secret's check for the peer endpoint (`peers.secretFile`); nil refuses peers.
    public let peerProof: PeerProof?

    public init(
        store: BlobStore, metrics: Metrics = Metrics(), policy: any PublishPolicy = AcceptAllPolicy(),
        authorizer: PushAuthorizer = PushAuthorizer(mode: .loopback), protectedTags: ProtectedTags? = nil,
        pullThrough: (any PullThrough)? = nil, peerProof: PeerProof? = nil
    ) {
        self.pullThrough = pullThrough
        self.peerProof = peerProof
        self.store = store
        self.metrics = metrics
        self.publisher = ImagePublisher(store: store, policy: policy)
        self.authorizer = authorizer
        self.protectedTags = protectedTags ?? ProtectedTags(store: store)
    }

    /// How the HTTP layer treats a request's body.
    enum BodyHandling: Equatable {
        /// Not needed: read and dropped.
        case discard
        /// Collected in memory up to `limit` bytes (manifests).
        case buffer(limit: Int)
        /// Streamed into an upload session as it arrives.
        case stream
    }

    static func bodyHandling(_ request: Request, _ route: Route) -> BodyHandling {
        switch (route, request.method) {
        case (.manifest, .PUT): .buffer(limit: Manifest.maxSize)
        case (.upload, .PATCH), (.upload, .PUT): .stream
        case (.uploads, .POST) where request.query["digest"] != nil && request.query["mount"] == nil: .stream
        default: .discard
        }
    }

    /// Answers a request whose body (if any) is in `body`.
    func handle(_ request: Request, route: Route, body: [UInt8]) -> Response {
        do {
            return try dispatch(request, route: route, body: body)
        } catch let error as RegistryError {
            return .error(error)
        } catch {
            return .error(.storage(error))
        }
    }

    private func dispatch(_ request: Request, route: Route, body: [UInt8]) throws -> Response {
        switch (route, request.method) {
        case (.base, .GET), (.base, .HEAD):
            return .json(Array("{}".utf8))
        case (.health, .GET), (.health, .HEAD):
            return .json(Array(#"{"status":"serving"}"#.utf8))
        case (.metrics, .GET):
            var response = Response(status: .ok, body: .bytes(ByteBuffer(string: metrics.render(store: store))))
            response.headers.add(name: "Content-Type", value: "text/plain; version=0.0.4")
            return response
        case (.catalog, .GET):
            return try catalog(request)
        case (.tags(let name), .GET):
            return try tags(request, name)
        case (.referrers(let name, let digest), .GET):
            return try referrers(request, name, digest)
        case (.blob(let name, let digest), .GET), (.blob(let name, let digest), .HEAD):
            return try getBlob(request, name, digest)
        case (.peerBlob(let digest), .GET), (.peerBlob(let digest), .HEAD):
            return try peerBlob(request, digest)
        case (.peerManifest(let digest), .GET), (.peerManifest(let digest), .HEAD):
            return try peerManifest(request, digest)
        case (.peerTag(let name, let tag), .GET), (.peerTag(let name, let tag), .HEAD):
            return try peerTag(request, name, tag)
        case (.peerClaim(let digest), .POST):
            return try peerClaim(request, digest)
        case (.blob(let name, let digest), .DELETE):
            return try deleteBlob(name, digest)
        case (.uploads(let name), .POST):
            return try startUpload(request, name)
        case (.upload(let name, let id), .GET):
            return try uploadStatus(name, id)
        case (.upload(let name, let id), .DELETE):
            return try cancelUpload(name, id)
        case (.manifest(let name, let reference), .GET), (.manifest(let name, let reference), .HEAD):
            return try getManifest(request, name, reference)
        case (.manifest(let name, let reference), .PUT):
            return try putManifest(request, name, reference, body: body)
        case (.manifest(let name, let reference), .DELETE):
            return try deleteManifest(name, reference)
        default:
            throw RegistryError(.unsupported, "\(request.method) is not supported on \(request.path.prefix(200))")
        }
    }

    // MARK: Listing

    /// Applies `n` and `last` to a sorted list and builds the `Link` header for the next page.
    private func page(_ items: [String], _ request: Request, path: String) throws -> ([String], String?) {
        var items = items
        if let last = request.query["last"], !last.isEmpty {
            items = items.filter { $0 > last }
        }
        guard let text = request.query["n"] else { return (items, nil) }
        guard let n = Int(text), n >= 0 else {
            throw RegistryError(.unsupported, "n must be a non-negative number, got \"\(text.prefix(50))\"", status: .badRequest)
        }
        guard items.count > n else { return (items, nil) }
        let pageItems = Array(items.prefix(n))
        guard let lastItem = pageItems.last else { return (pageItems, nil) }
        return (pageItems, "<\(path)?n=\(n)&last=\(lastItem)>; rel=\"next\"")
    }

    private func catalog(_ request: Request) throws -> Response {
        struct Body: Encodable { let repositories: [String] }
        let (names, link) = try page(store.repositories().map(\.value), request, path: "/v2/_catalog")
        var response = Response.json(try JSONCoder.encode(Body(repositories: names)))
        if let link { response.headers.add(name: "Link", value: link) }
        return response
    }

    private func tags(_ request: Request, _ name: RepositoryName) throws -> Response {
        struct Body: Encodable {
            let name: String
            let tags: [String]
        }
        guard store.repositoryExists(name) else {
            throw RegistryError(.nameUnknown, "repository \(name) is not known to this registry")
        }
        let (tags, link) = try page(store.tags(name), request, path: "/v2/\(name)/tags/list")
        var response = Response.json(try JSONCoder.encode(Body(name: name.value, tags: tags)))
        if let link { response.headers.add(name: "Link", value: link) }
        return response
    }

    private func referrers(_ request: Request, _ name: RepositoryName, _ subject: Digest) throws -> Response {
        let filter = request.query["artifactType"].flatMap { $0.isEmpty ? nil : $0 }
        var documents: [[UInt8]] = []
        for (_, bytes) in try store.referrers(of: subject, in: name) {
            if let filter {
                guard let descriptor = try? JSONCoder.decode(Descriptor.self, from: bytes),
                    descriptor.artifactType == filter
                else { continue }
            }
            documents.append(bytes)
        }
        var body = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":["#.utf8)
        for (index, document) in documents.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: document)
        }
        body.append(contentsOf: Array("]}".utf8))
        var response = Response.json(body, contentType: MediaType.ociIndex)
        if filter != nil { response.headers.add(name: "OCI-Filters-Applied", value: "artifactType") }
        return response
    }
}
