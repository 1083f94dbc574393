import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the peer endpoint (TinyRegistry/RegistryAPI+Peers) tells the site's other
/// satellites about blobs this store is downloading, read from the files and locks, so it
/// holds across processes (`serve` answers for a `sync` run by hand).
extension BlobStore {
    /// What this store is doing about a blob it does not hold, as a peer sees it.
    public enum DownloadActivity: Sendable, Equatable {
        /// Nothing (or a partial file nobody writes now).
        case none
        /// A writer holds the download and fetches it from a source of its own (the
        /// upstream): the file grows; `Int64` is the bytes on disk.
        case fetching(Int64)
        /// A writer holds the download but waits for, or follows, another peer: not a
        /// source to follow (following it could make two satellites wait for each other).
        case following(Int64)
    }

    /// The marker a peered transfer keeps next to its download file while it is not
    /// fetching from the upstream itself.
    public func followMarkerPath(_ digest: Digest) -> String { "\(layout.download(digest)).follow" }

    /// Sets or clears the follow marker of `digest`.
    public func setFollowing(_ digest: Digest, _ following: Bool) {
        let path = followMarkerPath(digest)
        if following {
            try? PosixFile.touch(path, durable: false)
        } else {
            try? PosixFile.unlink(path)
        }
    }

    /// Whether a sync pass (or a garbage collection) holds the store's writer lock now: a
    /// peer that is not syncing is left out of the choice of who fetches a blob.
    public var writerBusy: Bool {
        let path = layout.writerLock
        guard let fd = try? PosixFile.open(path, O_RDONLY) else { return false }
        defer { PosixFile.close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            _ = flock(fd, LOCK_UN)
            return false
        }
        return true
    }

    /// Whether someone (this process or another) is writing the download of `digest` now:
    /// its writer holds the file lock (``claimDownload(_:)``).
    public func downloadActivity(_ digest: Digest) -> DownloadActivity {
        let path = layout.download(digest)
        guard let fd = try? PosixFile.open(path, O_RDONLY) else { return .none }
        defer { PosixFile.close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            _ = flock(fd, LOCK_UN)
            return .none
        }
        let size = (try? PosixFile.status(fd: fd, path: path).size) ?? 0
        return PosixFile.exists(followMarkerPath(digest)) ? .following(size) : .fetching(size)
    }
}

/// Claims: which satellite of the site fetches a blob from the WAN (docs/sync.md, "Who
/// fetches a blob"). A satellite about to fetch a blob from its upstream first marks itself
/// `deciding` (``beginClaim(_:)``), asks every live peer (`POST /peer/v1/claims/<digest>`,
/// answered by ``answerClaim(_:from:)``), then settles (``settleClaim(_:decide:)``) over the
/// peers that answered `deciding` and those that asked it while it was deciding. Because each
/// marks itself before it asks, of two satellites deciding at once at least one sees the
/// other; a peer seen deciding records the asker, so both settle over sets that hold both and
/// the same rank picks one of them. A peer seen holding makes the asker yield.
///
/// The state is a file next to the download (`<download>.claim`, first line `deciding` or
/// `won`, then one asker URL a line), changed and read under its `flock`, so a `serve`
/// process answers for a `sync` run by hand. It counts only while its writer holds the
/// download (a file left by a writer that died is ignored and removed by the next claim).
extension BlobStore {
    /// What a satellite answers a peer that wants to fetch a blob from its upstream.
    public enum ClaimAnswer: String, Sendable {
        /// Nothing here stands in the way.
        case none
        /// This satellite is deciding whether it fetches the blob; the asker was recorded.
        case deciding
        /// This satellite holds the blob, fetches it or won the claim: follow it.
        case holding
    }

    /// At most this many askers are recorded per claim (a site has a handful of satellites).
    static let maxClaimants = 64

    public func claimPath(_ digest: Digest) -> String { "\(layout.download(digest)).claim" }

    /// Marks this satellite as deciding whether it fetches `digest` (replacing an earlier
    /// state of its own). Call it while holding the download with the follow marker set.
    public func beginClaim(_ digest: Digest) {
        let path = claimPath(digest)
        _ = withClaimFile(path, create: true) { fd in
            try PosixFile.truncate(fd, to: 0, path: path)
            try Self.append(fd, "deciding\n", path: path)
            return true
        }
    }

    /// Settles the claim begun by ``beginClaim(_:)``: `decide` gets the URLs of the peers that
    /// asked meanwhile and says whether this satellite won. A winner's file says `won` until
    /// ``endClaim(_:)``; a loser's is removed. Returns what `decide` said (false when the file
    /// is gone).
    public func settleClaim(_ digest: Digest, decide: ([String]) -> Bool) -> Bool {
        let path = claimPath(digest)
        return withClaimFile(path, create: false) { fd in
            let lines = Self.readLines(fd, path: path)
            let won = decide(Array(lines.dropFirst()))
            if won {
                try PosixFile.truncate(fd, to: 0, path: path)
                try Self.append(fd, "won\n", path: path)
            } else {
                try PosixFile.unlink(path)
            }
            return won
        } ?? false
    }

    /// Drops this satellite's claim on `digest` (its fetch ended, or it follows a peer).
    public func endClaim(_ digest: Digest) {
        try? PosixFile.unlink(claimPath(digest))
    }

    /// The answer to `requester` (its registry URL as it names itself), which wants to fetch
    /// `digest` from its upstream.
    public func answerClaim(_ digest: Digest, from requester: String) -> ClaimAnswer {
        if hasBlob(digest) { return .holding }
        switch downloadActivity(digest) {
        case .none: return .none
        case .fetching: return .holding
        case .following: break
        }
        return withClaimFile(claimPath(digest), create: false) { fd in
            let lines = Self.readLines(fd, path: claimPath(digest))
            switch lines.first {
            case "won":
                return .holding
            case "deciding":
                if lines.count <= Self.maxClaimants, !lines.dropFirst().contains(requester) {
                    try Self.append(fd, "\(requester)\n", path: claimPath(digest))
                }
                return .deciding
            default:
                return .none
            }
        } ?? .none
    }

    /// Runs `body` on the claim file at `path` under its exclusive lock; nil when it does not
    /// exist (and `create` is false), was replaced while waiting for the lock, or `body` threw.
    private func withClaimFile<T>(_ path: String, create: Bool, _ body: (Int32) throws -> T) -> T? {
        guard let fd = try? PosixFile.open(path, create ? O_RDWR | O_CREAT : O_RDWR) else { return nil }
        defer { PosixFile.close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { return nil }
        }
        defer { _ = flock(fd, LOCK_UN) }
        guard PosixFile.sameFile(fd: fd, path: path) else { return nil }
        return try? body(fd)
    }

    private static func readLines(_ fd: Int32, path: String) -> [String] {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let count = (try? buffer.withUnsafeMutableBytes { try PosixFile.preadFull(fd, $0, at: 0, path: path) }) ?? 0
        return buffer.prefix(count).split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func append(_ fd: Int32, _ text: String, path: String) throws {
        let size = try PosixFile.status(fd: fd, path: path).size
        try Array(text.utf8).withUnsafeBytes { try PosixFile.pwriteAll(fd, $0, at: size, path: path) }
    }
}
