import ContentStore
import OCICore
import NIOCore
import NIOHTTP1

extension RegistryAPI {
    func getBlob(_ request: Request, _ name: RepositoryName, _ digest: Digest) throws -> Response {
        guard store.repositoryHasBlob(name, digest) else {
            throw RegistryError(.blobUnknown, "blob \(digest) is not known to repository \(name)")
        }
        store.noteRead(digest)
        let (fd, size): (Int32, Int64)
        do {
            (fd, size) = try store.openBlob(digest)
        } catch let error as PosixError where error.isNotFound {
            // Removed between the check and the open (GC): the blob is gone.
            throw RegistryError(.blobUnknown, "blob \(digest) is not known to repository \(name)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Docker-Content-Digest", value: digest.description)
        headers.add(name: "ETag", value: "\"\(digest)\"")
        headers.add(name: "Accept-Ranges", value: "bytes")
        headers.add(name: "Cache-Control", value: "max-age=31536000")
        let (status, offset, length): (HTTPResponseStatus, Int64, Int64)
        do {
            (status, offset, length) = try Self.range(request, size: size, headers: &headers)
        } catch {
            PosixFile.close(fd)
            throw error
        }
        if request.method == .HEAD {
            PosixFile.close(fd)
            return Response(status: status, headers: headers)
        }
        return Response(status: status, headers: headers, body: .file(fd: fd, offset: offset, length: length))
    }

    /// The part of a blob of `size` bytes a request's `Range` asks for: the status, offset and
    /// length, with `Content-Range` and `Content-Length` added to `headers`.
    ///
    /// Throws ``RegistryError`` (416) for a range outside the blob.
    static func range(_ request: Request, size: Int64, headers: inout HTTPHeaders) throws -> (HTTPResponseStatus, Int64, Int64) {
        var result: (HTTPResponseStatus, Int64, Int64) = (.ok, 0, size)
        if let header = request.headers.first(name: "range") {
            switch ByteRange.parse(header, size: size) {
            case .full:
                break
            case .range(let start, let end):
                result = (.partialContent, start, end - start + 1)
                headers.add(name: "Content-Range", value: "bytes \(start)-\(end)/\(size)")
            case .unsatisfiable:
                throw RegistryError(
                    .blobUnknown, "range \(header.prefix(100)) is outside the blob's \(size) bytes",
                    status: .rangeNotSatisfiable, headers: [("Content-Range", "bytes */\(size)")])
            }
        }
        headers.add(name: "Content-Length", value: String(result.2))
        return result
    }

    func deleteBlob(_ name: RepositoryName, _ digest: Digest) throws -> Response {
        if protectedTags.protects(repository: name.value) {
            // A layer of a desired image gone would break it as surely as a moved tag.
            throw RegistryError(.denied, "repository \(name) holds desired-state images: only the sync and gc remove its blobs")
        }
        guard try store.unlinkBlob(digest, from: name) else {
            throw RegistryError(.blobUnknown, "blob \(digest) is not known to repository \(name)")
        }
        return Response(status: .accepted, headers: ["Content-Length": "0"])
    }
}

/// A parsed `Range: bytes=…` header.
enum ByteRange: Equatable {
    /// No usable range: send the whole entity (also for multi-range requests, which the spec
    /// lets a server ignore).
    case full
    case range(start: Int64, end: Int64)
    case unsatisfiable

    static func parse(_ header: String, size: Int64) -> ByteRange {
        let text = header.trimmed()
        guard text.lowercased().hasPrefix("bytes=") else { return .unsatisfiable }
        let spec = text.dropFirst(6)
        if spec.contains(",") { return .full }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .unsatisfiable }
        let first = parts[0].trimmed(), second = parts[1].trimmed()
        if first.isEmpty {
            // Suffix range: the last N bytes.
            guard let suffix = Int64(second), suffix > 0, size > 0 else { return .unsatisfiable }
            return .range(start: max(0, size - suffix), end: size - 1)
        }
        guard let start = Int64(first), start >= 0, start < size else { return .unsatisfiable }
        if second.isEmpty { return .range(start: start, end: size - 1) }
        guard let end = Int64(second), end >= start else { return .unsatisfiable }
        return .range(start: start, end: min(end, size - 1))
    }
}
