import OCICore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The content-addressed store under `storage.path` (its folders: ``StoreLayout``).
///
/// Content only ever appears by an atomic rename of a complete, verified (and, per the
/// profile, fsync'ed) file. Readers take no lock: an open file stays readable even if it is
/// unlinked under them. Repository and tag names reach paths only after they matched the OCI
/// grammar (``RepositoryName``, ``Reference``), which rules out traversal.
public final class BlobStore: Sendable {
    public struct Configuration: Sendable {
        public var root: String
        public var fsyncOnCommit: Bool
        /// Size of the buffers used to read or hash files.
        public var bufferSize: Int
        /// Upload sessions untouched for this long (nanoseconds) are purged.
        public var uploadTimeout: Int64
        /// Bytes between two fsyncs of a resumable download.
        public var fsyncInterval: Int64

        public init(root: String, fsyncOnCommit: Bool, bufferSize: Int, uploadTimeout: Int64, fsyncInterval: Int64) {
            self.root = root
            self.fsyncOnCommit = fsyncOnCommit
            self.bufferSize = bufferSize
            self.uploadTimeout = uploadTimeout
            self.fsyncInterval = fsyncInterval
        }
    }

    public enum Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        /// The content did not hash to the digest it was announced with.
        case digestMismatch(expected: Digest, actual: Digest)
        /// A small file (manifest, descriptor) is larger than allowed.
        case tooLarge(limit: Int)

        public var description: String {
            switch self {
            case .digestMismatch(let expected, let actual):
                "content hashes to \(actual), not the announced \(expected)"
            case .tooLarge(let limit):
                "content is larger than \(limit) bytes"
            }
        }
    }

    public let configuration: Configuration
    /// Every path of the store.
    public let layout: StoreLayout
    /// Absolute path of the store.
    public var root: String { layout.root }
    let uploads = Mutex<[String: UploadSession]>([:])
    /// Last use of each blob (written, linked or served), for LRU eviction.
    public let access: AccessLog
    /// Last time each blob was served to a client: content the agent itself released is
    /// kept only while someone may be reading it.
    public let reads: AccessLog
    /// Bytes the blobs occupy, as a running figure (quota checks).
    public let usage: StoreUsage

    /// Opens (and creates) the store at `configuration.root`.
    public init(configuration: Configuration) throws {
        self.configuration = configuration
        layout = StoreLayout(root: configuration.root)
        access = AccessLog(layout: layout, path: layout.accessLog)
        reads = AccessLog(layout: layout, path: layout.readLog)
        usage = StoreUsage(layout: layout)
        for directory in layout.folders {
            try PosixFile.makeDirectories(directory)
        }
    }

    // MARK: Paths

    public func blobPath(_ digest: Digest) -> String { layout.blob(digest) }

    func repositoryPath(_ repository: RepositoryName) -> String { layout.repository(repository) }
    func layerLinkPath(_ repository: RepositoryName, _ digest: Digest) -> String { layout.layerLink(repository, digest) }
    func revisionPath(_ repository: RepositoryName, _ digest: Digest) -> String { layout.revision(repository, digest) }
    func tagsPath(_ repository: RepositoryName) -> String { layout.tags(repository) }
    func referrersPath(_ repository: RepositoryName, subject: Digest) -> String { layout.referrers(repository, subject: subject) }

    // MARK: Blobs

    /// Size of a stored blob, or nil when it is not in the store.
    public func blobSize(_ digest: Digest) -> Int64? {
        guard let status = try? PosixFile.status(blobPath(digest)), status.isRegular else { return nil }
        return status.size
    }

    public func hasBlob(_ digest: Digest) -> Bool { blobSize(digest) != nil }

    /// Notes that a client is reading `digest` (a manifest or blob served): it counts as a
    /// use for LRU eviction and as a read for content the agent released.
    public func noteRead(_ digest: Digest) {
        access.touch(digest)
        reads.touch(digest)
    }

    /// Opens a stored blob for reading. The caller closes the descriptor.
    ///
    /// Throws ``PosixError`` (`isNotFound`) when the blob is not stored.
    public func openBlob(_ digest: Digest) throws -> (fd: Int32, size: Int64) {
        let path = blobPath(digest)
        let fd = try PosixFile.open(path, O_RDONLY)
        do {
            return (fd, try PosixFile.status(fd: fd, path: path).size)
        } catch {
            PosixFile.close(fd)
            throw error
        }
    }

    /// Reads a small blob (a manifest, a config) whole.
    public func readBlob(_ digest: Digest, limit: Int) throws -> [UInt8] {
        do {
            return try PosixFile.readAll(path: blobPath(digest), limit: limit)
        } catch let error as PosixError where error.code == EFBIG {
            throw Error.tooLarge(limit: limit)
        }
    }

    /// Stores small content held in memory (a manifest) and returns its digest.
    @discardableResult
    public func putBlob(_ bytes: [UInt8], algorithm: Digest.Algorithm = .sha256) throws -> Digest {
        let digest = ContentHasher.digest(of: bytes, algorithm: algorithm)
        if hasBlob(digest) { return digest }
        let temp = layout.temporaryPut()
        let fd = try PosixFile.open(temp, O_WRONLY | O_CREAT | O_EXCL)
        do {
            try bytes.withUnsafeBytes { try PosixFile.pwriteAll(fd, $0, at: 0, path: temp) }
            if configuration.fsyncOnCommit { try PosixFile.fsync(fd, path: temp) }
            PosixFile.close(fd)
            try install(file: temp, as: digest)
        } catch {
            PosixFile.close(fd)
            try? PosixFile.unlink(temp)
            throw error
        }
        return digest
    }

    /// Moves a complete, verified file into place under its digest.
    func install(file: String, as digest: Digest) throws {
        let target = blobPath(digest)
        let directory = String(target[..<(target.lastIndex(of: "/") ?? target.endIndex)])
        let size = (try? PosixFile.status(file).size) ?? 0
        let replaced = (try? PosixFile.status(target).size) ?? 0
        do {
            try PosixFile.rename(file, target)
        } catch let error as PosixError where error.isNotFound {
            try PosixFile.makeDirectories(directory)
            try PosixFile.rename(file, target)
        }
        usage.record(size - replaced)
        if configuration.fsyncOnCommit { try PosixFile.fsyncDirectory(directory) }
    }

    /// Removes a blob from the store (all repositories). Open readers keep their view.
    public func removeBlob(_ digest: Digest) throws {
        let size = blobSize(digest) ?? 0
        try PosixFile.unlink(blobPath(digest))
        usage.record(-size)
    }

    /// Every stored blob, for GC and verify.
    public func allBlobs() throws -> [Digest] {
        var result: [Digest] = []
        for algorithm in [Digest.Algorithm.sha256, .sha512] {
            let base = layout.blobs(algorithm)
            for prefix in try PosixFile.list(base) where prefix.count == 2 {
                for name in try PosixFile.list("\(base)/\(prefix)") {
                    if let digest = Digest("\(algorithm.rawValue):\(name)") { result.append(digest) }
                }
            }
        }
        return result
    }

    // MARK: Ingest

    /// Claims the resumable download of `digest`: a new file, or the partial one a previous
    /// run left (cut back to its last durable offset). One writer per digest: a second claim
    /// in this process waits its turn (single flight), one in another process waits for the
    /// file lock; either then finds the blob stored and gets nil, or continues the partial
    /// file where the first writer left it. Never two writers interleaved.
    ///
    /// Throws ``PosixError`` when the file cannot be opened or locked, CancellationError
    /// when the task is cancelled while it waits.
    public func claimDownload(_ digest: Digest) async throws -> Ingest? {
        await claims.acquire(digest)
        var handedOver = false
        defer { if !handedOver { claims.release(digest) } }
        let path = downloadPath(digest)
        while true {
            if hasBlob(digest) { return nil }
            let fd = try PosixFile.open(path, O_RDWR | O_CREAT)
            while flock(fd, LOCK_EX | LOCK_NB) != 0 {
                guard errno == EWOULDBLOCK || errno == EINTR else {
                    let error = PosixError("flock", path: path)
                    PosixFile.close(fd)
                    throw error
                }
                do {
                    try await Task.sleep(nanoseconds: 50_000_000)
                } catch {
                    PosixFile.close(fd)
                    throw error
                }
            }
            // The holder committed (renamed the file into blobs/) or discarded it between our
            // open and our lock: this descriptor is not the download file any more.
            if !PosixFile.sameFile(fd: fd, path: path) {
                PosixFile.close(fd)
                continue
            }
            if hasBlob(digest) {
                PosixFile.close(fd)
                return nil
            }
            // A follow marker or claim (BlobStore+Peers) belongs to the holder of the lock: one
            // left by a writer that died is not this writer's.
            setFollowing(digest, false)
            endClaim(digest)
            let ingest = try Ingest(
                store: self, path: path, offsetPath: "\(path).offset", algorithm: digest.algorithm, fd: fd,
                onClose: { [claims] in claims.release(digest) })
            handedOver = true
            return ingest
        }
    }

    /// Per-digest single flight inside the process.
    let claims = IngestClaims()

    /// Opens the download file of `digest` without claiming it: only for tests that play a
    /// process which died holding it (its claim and lock went with it).
    func openDownload(_ digest: Digest) throws -> Ingest {
        let path = downloadPath(digest)
        return try Ingest(store: self, path: path, offsetPath: "\(path).offset", algorithm: digest.algorithm)
    }

    func downloadPath(_ digest: Digest) -> String { layout.download(digest) }

    /// Bytes already durably downloaded for `digest` by an earlier, interrupted transfer.
    public func partialDownloadSize(_ digest: Digest) -> Int64 {
        let path = downloadPath(digest)
        guard let size = try? PosixFile.status(path).size else { return 0 }
        return Ingest.trustedLength(sidecar: "\(path).offset", fileSize: size)
    }

    // MARK: Repository links

    /// Records that `digest` is a blob of `repository`.
    public func linkBlob(_ digest: Digest, into repository: RepositoryName) throws {
        access.touch(digest)
        try PosixFile.touch(layerLinkPath(repository, digest), durable: configuration.fsyncOnCommit)
    }

    public func unlinkBlob(_ digest: Digest, from repository: RepositoryName) throws -> Bool {
        let path = layerLinkPath(repository, digest)
        guard PosixFile.exists(path) else { return false }
        try PosixFile.unlink(path)
        return true
    }

    /// Whether `repository` may serve blob `digest`: linked as a layer or as a manifest, and
    /// present in the store.
    public func repositoryHasBlob(_ repository: RepositoryName, _ digest: Digest) -> Bool {
        (PosixFile.exists(layerLinkPath(repository, digest)) || PosixFile.exists(revisionPath(repository, digest)))
            && hasBlob(digest)
    }

    /// Records manifest `digest` in `repository` with its media type.
    public func linkManifest(_ digest: Digest, mediaType: String, into repository: RepositoryName) throws {
        let path = revisionPath(repository, digest)
        if let existing = try? PosixFile.readAll(path: path, limit: 1024), existing == Array(mediaType.utf8) { return }
        try PosixFile.writeAtomically(path, Array(mediaType.utf8), durable: configuration.fsyncOnCommit)
    }

    /// The media type of manifest `digest` in `repository`, or nil when it is not there.
    public func manifestMediaType(_ repository: RepositoryName, _ digest: Digest) -> String? {
        guard let bytes = try? PosixFile.readAll(path: revisionPath(repository, digest), limit: 1024),
            hasBlob(digest)
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func unlinkManifest(_ digest: Digest, from repository: RepositoryName) throws -> Bool {
        let path = revisionPath(repository, digest)
        guard PosixFile.exists(path) else { return false }
        try PosixFile.unlink(path)
        return true
    }

    /// Manifests of a repository.
    public func manifests(_ repository: RepositoryName) throws -> [Digest] {
        try digests(in: "\(repositoryPath(repository))/_manifests/revisions")
    }

    /// Digests named by the files of `<directory>/<algorithm>/`.
    private func digests(in directory: String) throws -> [Digest] {
        var result: [Digest] = []
        for algorithm in try PosixFile.list(directory) {
            for name in try PosixFile.list("\(directory)/\(algorithm)") {
                if let digest = Digest("\(algorithm):\(name)") { result.append(digest) }
            }
        }
        return result
    }

    /// Blobs linked into a repository.
    public func linkedBlobs(_ repository: RepositoryName) throws -> [Digest] {
        try digests(in: "\(repositoryPath(repository))/_layers")
    }

    // MARK: Tags

    public func resolveTag(_ repository: RepositoryName, _ tag: String) -> Digest? {
        guard Reference.isValidTag(tag),
            let bytes = try? PosixFile.readAll(path: "\(tagsPath(repository))/\(tag)", limit: 256)
        else { return nil }
        return Digest(String(decoding: bytes, as: UTF8.self))
    }

    /// Points `tag` at `digest`, atomically.
    public func setTag(_ repository: RepositoryName, _ tag: String, to digest: Digest) throws {
        precondition(Reference.isValidTag(tag), "tag validated by the caller")
        try PosixFile.writeAtomically(
            "\(tagsPath(repository))/\(tag)", Array(digest.description.utf8), durable: configuration.fsyncOnCommit)
    }

    public func deleteTag(_ repository: RepositoryName, _ tag: String) throws -> Bool {
        guard Reference.isValidTag(tag) else { return false }
        let path = "\(tagsPath(repository))/\(tag)"
        guard PosixFile.exists(path) else { return false }
        try PosixFile.unlink(path)
        return true
    }

    /// Tags of a repository in lexical order.
    public func tags(_ repository: RepositoryName) throws -> [String] {
        try PosixFile.list(tagsPath(repository)).filter { Reference.isValidTag($0) }.sorted()
    }

    public func repositoryExists(_ repository: RepositoryName) -> Bool {
        PosixFile.exists("\(repositoryPath(repository))/_manifests") || PosixFile.exists("\(repositoryPath(repository))/_layers")
    }

    /// Every repository, in lexical order.
    public func repositories() throws -> [RepositoryName] {
        var result: [RepositoryName] = []
        func walk(_ path: String, _ prefix: String) throws {
            let names = try PosixFile.list(path)
            if !prefix.isEmpty, names.contains("_manifests") || names.contains("_layers"),
                let name = RepositoryName(prefix)
            {
                result.append(name)
            }
            for name in names where !name.hasPrefix("_") && !name.hasPrefix(".") {
                let child = "\(path)/\(name)"
                guard (try? PosixFile.status(child))?.isDirectory == true else { continue }
                try walk(child, prefix.isEmpty ? name : "\(prefix)/\(name)")
            }
        }
        try walk(layout.repositories, "")
        return result.sorted()
    }

    // MARK: Referrers

    /// Records `descriptor` (JSON) as a referrer of `subject` in `repository`.
    public func addReferrer(_ digest: Digest, descriptor: [UInt8], subject: Digest, in repository: RepositoryName) throws {
        try PosixFile.writeAtomically(
            "\(referrersPath(repository, subject: subject))/\(digest.algorithm.rawValue)-\(digest.hex)", descriptor,
            durable: configuration.fsyncOnCommit)
    }

    public func removeReferrer(_ digest: Digest, subject: Digest, in repository: RepositoryName) throws {
        try PosixFile.unlink("\(referrersPath(repository, subject: subject))/\(digest.algorithm.rawValue)-\(digest.hex)")
    }

    /// Descriptors (JSON) of the manifests whose subject is `subject`, in digest order.
    public func referrers(of subject: Digest, in repository: RepositoryName) throws -> [(Digest, [UInt8])] {
        let directory = referrersPath(repository, subject: subject)
        return try PosixFile.list(directory).sorted().compactMap { name in
            guard let dash = name.firstIndex(of: "-"),
                let digest = Digest("\(name[..<dash]):\(name[name.index(after: dash)...])"),
                manifestMediaType(repository, digest) != nil,
                let bytes = try? PosixFile.readAll(path: "\(directory)/\(name)", limit: 1 << 20)
            else { return nil }
            return (digest, bytes)
        }
    }
}

/// Which digests a writer of this process holds, and who waits for each: the waiters are
/// resumed one at a time, in order.
final class IngestClaims: Sendable {
    private let table = Mutex<[Digest: [CheckedContinuation<Void, Never>]]>([:])

    func acquire(_ digest: Digest) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let free = table.withLock { table -> Bool in
                if let waiters = table[digest] {
                    table[digest] = waiters + [continuation]
                    return false
                }
                table[digest] = []
                return true
            }
            if free { continuation.resume() }
        }
    }

    func release(_ digest: Digest) {
        let next = table.withLock { table -> CheckedContinuation<Void, Never>? in
            guard var waiters = table[digest], !waiters.isEmpty else {
                table[digest] = nil
                return nil
            }
            let first = waiters.removeFirst()
            table[digest] = waiters
            return first
        }
        next?.resume()
    }
}
