import OCICore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A blob whose download is in progress, as its readers see it: the bytes land in the
/// store's ingest file (``StoreLayout/download(_:)``) and every reader follows that file up
/// to what has been written, then waits for more. One transfer feeds any number of readers;
/// a reader that comes late reads what is on disk and then follows. When the transfer
/// commits, the file is renamed into `blobs/` (an open descriptor keeps reading the same
/// file); when the digest did not match, the file is deleted and every reader is told to
/// fail, so no client ever sees a valid completion of content that was not verified.
public final class GrowingBlob: Sendable {
    /// What a reader may do now.
    public enum Status: Sendable {
        /// The first `n` bytes of the file are written.
        case available(Int64)
        /// The blob is verified and stored: all of it can be read.
        case complete
        /// The transfer failed (digest mismatch, upstream gone): cut the response.
        case failed(String)
    }

    private struct State {
        var available: Int64 = 0
        var finished = false
        var failure: String?
        var waiters: [(after: Int64, resume: @Sendable (Status) -> Void)] = []
        var readers = 0
        var onUnwatched: (@Sendable () -> Void)?
    }

    public let digest: Digest
    /// Bytes of the whole blob.
    public let size: Int64
    private let downloadPath: String
    private let blobPath: String
    private let state = Mutex(State())

    public init(digest: Digest, size: Int64, store: BlobStore) {
        self.digest = digest
        self.size = size
        downloadPath = store.layout.download(digest)
        blobPath = store.layout.blob(digest)
    }

    /// Bytes written so far (the blob's size once complete).
    public var available: Int64 {
        state.withLock { $0.finished ? size : $0.available }
    }

    /// The transfer wrote up to `offset` (it may go back: an upstream that ignored a range
    /// made the transfer start over, and readers then wait for the bytes again).
    public func advance(to offset: Int64) {
        // The last byte is held back until the digest matched (``finish()``): a client that
        // got every byte would see a valid completion of content that may yet fail.
        let available = min(offset, size - 1)
        let ready = state.withLock { state -> [@Sendable (Status) -> Void] in
            state.available = available
            var ready: [@Sendable (Status) -> Void] = []
            state.waiters.removeAll { waiter in
                guard state.available > waiter.after else { return false }
                ready.append(waiter.resume)
                return true
            }
            return ready
        }
        for resume in ready { resume(.available(available)) }
    }

    /// The blob is verified and in the store.
    public func finish() {
        let waiters = state.withLock { state -> [@Sendable (Status) -> Void] in
            state.finished = true
            state.available = size
            defer { state.waiters = [] }
            return state.waiters.map(\.resume)
        }
        for resume in waiters { resume(.complete) }
    }

    /// The transfer failed: nothing was kept; every reader must cut its response.
    public func fail(_ reason: String) {
        let waiters = state.withLock { state -> [@Sendable (Status) -> Void] in
            state.failure = reason
            defer { state.waiters = [] }
            return state.waiters.map(\.resume)
        }
        for resume in waiters { resume(.failed(reason)) }
    }

    /// Calls `resume` once bytes past `offset` are written, the blob is complete, or the
    /// transfer failed: at once when that is already so, else from the transfer's thread.
    public func whenReadable(after offset: Int64, _ resume: @escaping @Sendable (Status) -> Void) {
        let now: Status? = state.withLock { state in
            if let failure = state.failure { return .failed(failure) }
            if state.finished { return .complete }
            if state.available > offset { return .available(state.available) }
            state.waiters.append((offset, resume))
            return nil
        }
        if let now { resume(now) }
    }

    /// Waits (async) like ``whenReadable(after:_:)``.
    public func readable(after offset: Int64) async -> Status {
        await withCheckedContinuation { continuation in
            whenReadable(after: offset) { continuation.resume(returning: $0) }
        }
    }

    /// Opens the bytes for reading: the download file while it grows, the stored blob once
    /// it is complete. The caller closes the descriptor.
    ///
    /// Throws ``PosixError`` when neither exists (the transfer failed and removed its file).
    public func open() throws -> Int32 {
        // The stored blob first: once it exists it is the verified content, whatever partial
        // file another process may have left under the download path.
        if let fd = try? PosixFile.open(blobPath, O_RDONLY) { return fd }
        do {
            return try PosixFile.open(downloadPath, O_RDONLY)
        } catch let error as PosixError where error.isNotFound {
            // Committed (renamed into blobs/) between the two opens.
            return try PosixFile.open(blobPath, O_RDONLY)
        }
    }

    // MARK: Readers

    /// Called once when the last reader leaves while the transfer still runs.
    public func setUnwatchedHandler(_ handler: @escaping @Sendable () -> Void) {
        state.withLock { $0.onUnwatched = handler }
    }

    /// A reader starts following the transfer.
    public func addReader() {
        state.withLock { $0.readers += 1 }
    }

    /// A reader is done (served, failed or disconnected). A disconnect never cancels the
    /// transfer by itself: only the unwatched handler decides (the profile's setting).
    public func removeReader() {
        let handler = state.withLock { state -> (@Sendable () -> Void)? in
            state.readers -= 1
            guard state.readers <= 0, !state.finished, state.failure == nil else { return nil }
            return state.onUnwatched
        }
        handler?()
    }

    /// Readers following the transfer now.
    public var readerCount: Int { state.withLock { $0.readers } }
}
