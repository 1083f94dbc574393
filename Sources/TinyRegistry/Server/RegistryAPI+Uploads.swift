import ContentStore
import OCICore
import NIOCore
import NIOHTTP1

extension RegistryAPI {
    /// `Range` as the spec writes it for upload progress: `0-<last byte>`.
    static func progressRange(_ offset: Int64) -> String {
        "0-\(max(0, offset - 1))"
    }

    static func uploadHeaders(_ session: UploadSession, status: HTTPResponseStatus) -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "Location", value: "/v2/\(session.repository)/blobs/uploads/\(session.id)")
        headers.add(name: "Range", value: progressRange(session.offset))
        headers.add(name: "Docker-Upload-UUID", value: session.id)
        headers.add(name: "Content-Length", value: "0")
        return Response(status: status, headers: headers)
    }

    static func createdBlob(_ name: RepositoryName, _ digest: Digest) -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "Location", value: "/v2/\(name)/blobs/\(digest)")
        headers.add(name: "Docker-Content-Digest", value: digest.description)
        headers.add(name: "Content-Length", value: "0")
        return Response(status: .created, headers: headers)
    }

    /// POST `/blobs/uploads/`: a cross-repository mount, or a new session.
    func startUpload(_ request: Request, _ name: RepositoryName) throws -> Response {
        if let mount = request.query["mount"] {
            guard let digest = Digest(mount) else {
                throw RegistryError(.digestInvalid, "invalid mount digest \"\(mount.prefix(200))\"")
            }
            let mountable: Bool
            if let from = request.query["from"] {
                guard let source = RepositoryName(from) else {
                    throw RegistryError(.nameInvalid, "invalid repository name \"\(from.prefix(300))\" in from")
                }
                mountable = store.repositoryHasBlob(source, digest)
            } else {
                // No source named: mount what the store already holds (automatic content discovery).
                mountable = store.hasBlob(digest)
            }
            if mountable {
                try store.linkBlob(digest, into: name)
                return Self.createdBlob(name, digest)
            }
        }
        let session = try store.startUpload(in: name)
        defer { store.releaseUpload(session) }
        return Self.uploadHeaders(session, status: .accepted)
    }

    func acquire(_ name: RepositoryName, _ id: String) throws -> UploadSession {
        switch store.acquireUpload(id, repository: name) {
        case .found(let session):
            return session
        case .unknown:
            throw RegistryError(.blobUploadUnknown, "upload \(id.prefix(64)) is not known to repository \(name)")
        case .busy:
            throw RegistryError(
                .blobUploadInvalid, "upload \(id.prefix(64)) is busy with another request", status: .conflict)
        }
    }

    func uploadStatus(_ name: RepositoryName, _ id: String) throws -> Response {
        let session = try acquire(name, id)
        defer { store.releaseUpload(session) }
        return Self.uploadHeaders(session, status: .noContent)
    }

    func cancelUpload(_ name: RepositoryName, _ id: String) throws -> Response {
        let session = try acquire(name, id)
        store.cancelUpload(session)
        return Response(status: .noContent, headers: ["Content-Length": "0"])
    }

    /// Opens the sink for a request whose body is blob data: PATCH or PUT on a session, or a
    /// monolithic POST with `?digest=`. Checks run before any byte is taken.
    func beginUpload(_ request: Request, route: Route) throws -> UploadSink {
        switch (route, request.method) {
        case (.uploads(let name), .POST):
            guard let text = request.query["digest"], let digest = Digest(text) else {
                throw RegistryError(.digestInvalid, "invalid digest \"\((request.query["digest"] ?? "").prefix(200))\"")
            }
            let session = try store.startUpload(in: name, algorithm: digest.algorithm)
            return UploadSink(api: self, session: session, finish: .commit(digest), ownsSession: true)
        case (.upload(let name, let id), .PATCH), (.upload(let name, let id), .PUT):
            var finalDigest: Digest?
            if request.method == .PUT {
                guard let text = request.query["digest"], let digest = Digest(text) else {
                    throw RegistryError(
                        .digestInvalid, "invalid or missing digest \"\((request.query["digest"] ?? "").prefix(200))\"")
                }
                finalDigest = digest
            }
            let session = try acquire(name, id)
            do {
                try checkContentRange(request, session)
            } catch {
                store.releaseUpload(session)
                throw error
            }
            return UploadSink(
                api: self, session: session, finish: finalDigest.map { .commit($0) } ?? .progress, ownsSession: false)
        default:
            throw RegistryError(.unsupported, "\(request.method) cannot carry blob data here")
        }
    }

    /// A chunk must start where the session stands (`Content-Range: <start>-<end>`).
    private func checkContentRange(_ request: Request, _ session: UploadSession) throws {
        guard let header = request.headers.first(name: "content-range") else { return }
        var text = Substring(header.trimmed())
        if text.lowercased().hasPrefix("bytes ") { text = text.dropFirst(6) }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        let invalid = RegistryError(
            .blobUploadInvalid,
            "Content-Range \(header.prefix(100)) does not continue the upload at offset \(session.offset)",
            status: .rangeNotSatisfiable,
            headers: [
                ("Location", "/v2/\(session.repository)/blobs/uploads/\(session.id)"),
                ("Range", Self.progressRange(session.offset)),
                ("Docker-Upload-UUID", session.id),
            ])
        guard parts.count == 2, let start = Int64(parts[0]), let end = Int64(parts[1]), end >= start,
            start == session.offset
        else { throw invalid }
        if let length = request.contentLength, length != end - start + 1 { throw invalid }
    }
}

/// Receives the body of an upload request chunk by chunk, on the blocking pool, in order.
///
/// The HTTP handler chains every call on one future, so a sink is never used by two threads
/// at once (hence `@unchecked Sendable`).
final class UploadSink: @unchecked Sendable {
    enum Finish {
        /// PATCH: report progress.
        case progress
        /// PUT or monolithic POST: verify and commit.
        case commit(Digest)
    }

    private let api: RegistryAPI
    private let session: UploadSession
    private let finishMode: Finish
    /// A monolithic POST's session exists only for this request.
    private let ownsSession: Bool
    private var failure: RegistryError?
    private var done = false

    init(api: RegistryAPI, session: UploadSession, finish: Finish, ownsSession: Bool) {
        self.api = api
        self.session = session
        self.finishMode = finish
        self.ownsSession = ownsSession
    }

    func append(_ buffer: ByteBuffer) {
        guard failure == nil, !done else { return }
        do {
            try buffer.withUnsafeReadableBytes { try session.append($0) }
        } catch {
            failure = .storage(error)
            api.store.cancelUpload(session)
            done = true
        }
    }

    func finish() -> Response {
        if let failure { return .error(failure) }
        done = true
        switch finishMode {
        case .progress:
            api.store.releaseUpload(session)
            return RegistryAPI.uploadHeaders(session, status: .accepted)
        case .commit(let digest):
            do {
                try api.store.finishUpload(session, digest: digest)
                return RegistryAPI.createdBlob(session.repository, digest)
            } catch let error as BlobStore.Error {
                return .error(RegistryError(.digestInvalid, "\(error)"))
            } catch {
                return .error(.storage(error))
            }
        }
    }

    /// The connection went away mid-body: a session the client created keeps what arrived
    /// (it can ask for the status and resume); a monolithic push is dropped.
    func abandon() {
        guard !done else { return }
        done = true
        if ownsSession {
            api.store.cancelUpload(session)
        } else {
            api.store.releaseUpload(session)
        }
    }
}
