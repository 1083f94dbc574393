import OCICore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A push in progress: `uploads/<id>/data` (the bytes so far) and `uploads/<id>/info` (the
/// repository). Sessions survive a restart: an unknown id found on disk is reopened and its
/// data re-hashed. Sessions untouched for `uploadTimeout` are purged.
///
/// One request works on a session at a time (``BlobStore/acquireUpload(_:repository:)``
/// marks it busy), so its ingest is never used by two threads at once.
public final class UploadSession: @unchecked Sendable {
    public let id: String
    public let repository: RepositoryName
    let ingest: Ingest
    let directory: String
    /// Seconds since the epoch of the last request on this session.
    var touched: Int64
    var busy = false

    init(id: String, repository: RepositoryName, ingest: Ingest, directory: String) {
        self.id = id
        self.repository = repository
        self.ingest = ingest
        self.directory = directory
        self.touched = Self.now()
    }

    /// Bytes received so far.
    public var offset: Int64 { ingest.offset }

    /// Appends a chunk of the blob.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        try ingest.write(bytes)
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
}

extension BlobStore {
    /// Upload ids are 32 hex characters: safe as a path component.
    static func isValidUploadID(_ id: some StringProtocol) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// Cleans up what a crash may have left: half-written small blobs. Call it once at start,
    /// before serving.
    public func recover() {
        for name in (try? PosixFile.list(layout.ingest)) ?? [] where name.hasPrefix("put-") {
            try? PosixFile.unlink("\(layout.ingest)/\(name)")
        }
        purgeAbandonedUploads()
    }

    /// Starts a push session in `repository`, already acquired by the caller. With
    /// `algorithm`, the data is hashed with it (a monolithic push announces its digest first).
    public func startUpload(in repository: RepositoryName, algorithm: Digest.Algorithm = .sha256) throws -> UploadSession {
        let id = PosixFile.randomToken()
        let directory = layout.upload(id)
        try PosixFile.makeDirectories(directory)
        do {
            try PosixFile.writeAtomically("\(directory)/info", Array(repository.value.utf8), durable: false)
            let ingest = try Ingest(store: self, path: "\(directory)/data", offsetPath: nil, algorithm: algorithm)
            let session = UploadSession(id: id, repository: repository, ingest: ingest, directory: directory)
            session.busy = true
            uploads.withLock { $0[id] = session }
            return session
        } catch {
            try? PosixFile.removeTree(directory)
            throw error
        }
    }

    public enum UploadLookup {
        case found(UploadSession)
        case unknown
        /// Another request is working on this session right now.
        case busy
    }

    /// Finds session `id` of `repository` and marks it busy; reopens it from disk after a
    /// restart. Release it with ``releaseUpload(_:)``.
    public func acquireUpload(_ id: String, repository: RepositoryName) -> UploadLookup {
        guard Self.isValidUploadID(id) else { return .unknown }
        let cached: UploadLookup? = uploads.withLock { sessions in
            guard let session = sessions[id] else { return nil }
            guard session.repository == repository else { return .unknown }
            if session.busy { return .busy }
            session.busy = true
            session.touched = UploadSession.now()
            return .found(session)
        }
        if let cached { return cached }
        let directory = layout.upload(id)
        guard let info = try? PosixFile.readAll(path: "\(directory)/info", limit: 1024),
            RepositoryName(String(decoding: info, as: UTF8.self)) == repository,
            let ingest = try? Ingest(store: self, path: "\(directory)/data", offsetPath: nil)
        else { return .unknown }
        let session = UploadSession(id: id, repository: repository, ingest: ingest, directory: directory)
        session.busy = true
        return uploads.withLock { sessions in
            if sessions[id] != nil { return .busy }
            sessions[id] = session
            return .found(session)
        }
    }

    public func releaseUpload(_ session: UploadSession) {
        uploads.withLock { _ in
            session.busy = false
            session.touched = UploadSession.now()
        }
    }

    /// Verifies the pushed blob against `digest`, moves it into the store and links it into
    /// the session's repository. The session is gone afterwards, whatever the outcome.
    public func finishUpload(_ session: UploadSession, digest: Digest) throws {
        defer { dropUpload(session) }
        try session.ingest.commit(expected: digest)
        try linkBlob(digest, into: session.repository)
    }

    /// Abandons a session and deletes its data.
    public func cancelUpload(_ session: UploadSession) {
        session.ingest.discard()
        dropUpload(session)
    }

    private func dropUpload(_ session: UploadSession) {
        uploads.withLock { _ = $0.removeValue(forKey: session.id) }
        try? PosixFile.removeTree(session.directory)
    }

    /// Deletes sessions untouched for longer than the upload timeout; returns how many.
    @discardableResult
    public func purgeAbandonedUploads() -> Int {
        let now = UploadSession.now()
        let limit = configuration.uploadTimeout / 1_000_000_000
        var purged = 0
        let known: [String: UploadSession] = uploads.withLock { $0 }
        for id in (try? PosixFile.list(layout.uploads)) ?? [] {
            let directory = layout.upload(id)
            if let session = known[id] {
                let stale = uploads.withLock { _ in !session.busy && now - session.touched > limit }
                if stale {
                    cancelUpload(session)
                    purged += 1
                }
                continue
            }
            let modified = (try? PosixFile.status("\(directory)/data").modified)
                ?? (try? PosixFile.status(directory).modified) ?? 0
            if now - modified > limit || !Self.isValidUploadID(id) {
                try? PosixFile.removeTree(directory)
                purged += 1
            }
        }
        return purged
    }
}
