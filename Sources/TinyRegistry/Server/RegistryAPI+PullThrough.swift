import ContentStore
import OCICore
import NIOCore
import NIOHTTP1
import NIOPosix

extension RegistryError.Code {
    /// The upstream of a proxied pull cannot be reached now (offline, outside a window).
    static let unavailable = RegistryError.Code(value: "UNAVAILABLE", status: HTTPResponseStatus.serviceUnavailable)
}

extension Route {
    /// The repository a pull names, for the routes a pull-through serves.
    var pulledRepository: RepositoryName? {
        switch self {
        case .manifest(let name, _), .blob(let name, _), .referrers(let name, _), .tags(let name): name
        default: nil
        }
    }

    /// The same route on another repository.
    func renamed(_ name: RepositoryName) -> Route {
        switch self {
        case .manifest(_, let reference): .manifest(name, reference)
        case .blob(_, let digest): .blob(name, digest)
        case .referrers(_, let digest): .referrers(name, digest)
        case .tags: .tags(name)
        default: self
        }
    }
}

extension RegistryAPI {
    /// Answers a request, asking the pull-through cache (when there is one) on a miss of an
    /// allowed repository, and first for a cached tag due for its recheck. Runs the store's
    /// work on `pool` and the upstream's in a task; never blocks an event loop.
    func respond(_ request: Request, route: Route, body: [UInt8], pool: NIOThreadPool, eventLoop: any EventLoop) -> EventLoopFuture<Response> {
        guard let pullThrough, request.method == .GET || request.method == .HEAD, let name = route.pulledRepository,
            let proxied = pullThrough.route(name, namespace: request.query["ns"])
        else {
            return pool.runIfActive(eventLoop: eventLoop) { self.handle(request, route: route, body: body) }
        }
        let local = route.renamed(proxied.local)
        guard proxied.allowed else {
            // Not allowed: the store alone answers; nothing goes upstream.
            return pool.runIfActive(eventLoop: eventLoop) { self.handle(request, route: local, body: body) }
        }
        if case .manifest(_, .tag(let tag)) = local, pullThrough.isStale(proxied, tag: tag),
            !protectedTags.ownedBySync(repository: proxied.local.value, tag: tag)
        {
            return eventLoop.makeFutureWithTask {
                do {
                    try await pullThrough.fetchManifest(proxied, reference: .tag(tag))
                } catch let error as PullThroughError {
                    return .error(Self.registryError(error, route: local))
                }
                return try await pool.runIfActive { self.handle(request, route: local, body: body) }
            }
        }
        return pool.runIfActive(eventLoop: eventLoop) { self.handle(request, route: local, body: body) }.flatMap { response in
            switch local {
            case .manifest(_, let reference) where response.status == .notFound:
                return eventLoop.makeFutureWithTask {
                    do {
                        try await pullThrough.fetchManifest(proxied, reference: reference)
                    } catch let error as PullThroughError {
                        return .error(Self.registryError(error, route: local))
                    }
                    return try await pool.runIfActive { self.handle(request, route: local, body: body) }
                }
            case .blob(_, let digest) where response.status == .notFound:
                return eventLoop.makeFutureWithTask {
                    do {
                        return try await self.proxiedBlob(request, proxied, digest, pullThrough)
                    } catch let error as PullThroughError {
                        return .error(Self.registryError(error, route: local))
                    } catch let error as RegistryError {
                        return .error(error)
                    }
                }
            case .referrers(_, let digest) where response.status == .ok && Self.isEmptyIndex(response):
                return eventLoop.makeFutureWithTask {
                    guard let bytes = try? await pullThrough.referrers(proxied, of: digest) else { return response }
                    return .json(bytes, contentType: MediaType.ociIndex)
                }
            case .manifest, .blob:
                if response.status.code < 300 { pullThrough.recordHit() }
                return eventLoop.makeSucceededFuture(response)
            default:
                return eventLoop.makeSucceededFuture(response)
            }
        }
    }

    /// A blob the store lacks: its headers at once, its body following the upstream
    /// transfer as it is written (or, for HEAD, only the size).
    private func proxiedBlob(_ request: Request, _ route: PullThroughRoute, _ digest: Digest, _ pullThrough: any PullThrough)
        async throws -> Response
    {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Docker-Content-Digest", value: digest.description)
        headers.add(name: "ETag", value: "\"\(digest)\"")
        headers.add(name: "Accept-Ranges", value: "bytes")
        if request.method == .HEAD {
            let size = try await pullThrough.blobSize(route, digest: digest)
            headers.add(name: "Content-Length", value: String(size))
            return Response(status: .ok, headers: headers)
        }
        let blob = try await pullThrough.fetchBlob(route, digest: digest)
        let (status, offset, length) = try Self.range(request, size: blob.size, headers: &headers)
        blob.addReader()
        return Response(status: status, headers: headers, body: .growing(blob, offset: offset, length: length))
    }

    static func isEmptyIndex(_ response: Response) -> Bool {
        guard case .bytes(let buffer) = response.body else { return false }
        return buffer.readableBytesView.suffix(3).elementsEqual(Array("[]}".utf8))
    }

    static func registryError(_ error: PullThroughError, route: Route) -> RegistryError {
        switch error.kind {
        case .notFound:
            if case .blob = route { return RegistryError(.blobUnknown, error.message) }
            return RegistryError(.manifestUnknown, error.message)
        case .denied:
            return RegistryError(.denied, error.message)
        case .unavailable:
            return RegistryError(.unavailable, error.message)
        case .badUpstream:
            return RegistryError(.unknown, error.message, status: .badGateway)
        }
    }
}
