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
