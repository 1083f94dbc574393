import ContentStore
import OCICore
import Synchronization

/// The retry, resume and commit loop around a ``ContentSource``, the same for every source:
/// claims the store's ingest of a digest (waiting for another writer of it), lets the source
/// write from the ingest's offset, checkpoints what arrived when the link breaks, backs off
/// and continues, and commits once the bytes hash to the digest. Nothing unverified becomes
/// visible; a partial file survives for the next attempt, pass or process.
public struct BlobTransfer: Sendable {
    public let source: any ContentSource
    public let store: BlobStore
    private let counters = Counters()

    public init(source: any ContentSource, store: BlobStore) {
        self.source = source
        self.store = store
    }

    final class Counters: Sendable {
        let resumes = Atomic<Int64>(0)
    }

    /// Transfers that continued a partial download instead of starting over.
    public var resumeCount: Int64 { counters.resumes.load(ordering: .relaxed) }

    /// Brings blob `digest` (of `size` bytes; negative when unknown) of `repository` into
    /// the store, retrying a broken link until `deadline` (monotonic ns). Returns at once
    /// when the blob is already stored, or when another writer stored it while this one
    /// waited.
    ///
    /// `checkpointInterval` overrides the profile's bytes between two checkpoints
    /// (``Ingest/checkpointInterval``); the readers of `following` (a proxied blob's
    /// clients) are released as soon as the bytes hashed to `digest`, before the file is made
    /// durable and visible.
    ///
    /// Throws ``SyncError``: link (gave up at the deadline; the partial file stays), corrupt
    /// (digest mismatch or too many bytes: nothing becomes visible, the partial file is
    /// gone), refused, notFound, storage, cancelled, deferred (the WAN closed: the partial
    /// file is checkpointed and stays).
    public func download(
        _ digest: Digest, size: Int64, repository: RepositoryName, deadline: Int64, checkpointInterval: Int64? = nil,
        following: GrowingBlob? = nil, progress: @escaping @Sendable (Int64) -> Void = { _ in }
    ) async throws {
        let claimed: Ingest?
        do {
            claimed = try await store.claimDownload(digest)
        } catch is CancellationError {
            throw SyncError(.cancelled, "cancelled")
        } catch {
            throw SyncError(.storage, "cannot open a download file for \(digest): \(error)")
        }
        guard let ingest = claimed else { return }
        if let checkpointInterval { ingest.checkpointInterval = checkpointInterval }
        var finished = false
        defer { if !finished { try? ingest.suspend() } }
        if ingest.offset > 0 { counters.resumes.wrappingAdd(1, ordering: .relaxed) }
        var attempt = 0
        while true {
            if Task.isCancelled { throw SyncError(.cancelled, "cancelled") }
            progress(ingest.offset)
            if size >= 0, ingest.offset > size { try? ingest.reset() }
            if size >= 0, ingest.offset == size {
                finished = true
                try commit(ingest, digest, following)
                return
            }
            let start = ingest.offset
            do {
                try await source.fetchBlob(digest, size: size, repository: repository, into: ingest, progress: progress)
            } catch let error as SyncError where error.kind == .link {
                try? ingest.checkpoint()
                // A transfer that moved forward before it broke starts the backoff over: a
                // link cut every few MB must not end up waiting 30 s between pieces.
                if ingest.offset > start { attempt = 0 }
                attempt += 1
                guard try await Retry.wait(attempt: attempt, until: deadline) else {
                    throw SyncError(.link, "\(digest): gave up after \(attempt) attempts: \(error)")
                }
                continue
            } catch let error as SyncError where error.kind == .deferred {
                // The WAN closed (window end, budget): not a broken link. Pause at a durable
                // offset; the next pass (or window) continues from it.
                try? ingest.checkpoint()
                throw error
            } catch let error as SyncError where error.kind == .corrupt {
                finished = true
                ingest.discard()
                throw error
            }
            if size < 0 {
                finished = true
                try commit(ingest, digest, following)
                return
            }
            if ingest.offset != size {
                // The transfer ended early without an error: continue from here.
                try? ingest.checkpoint()
                if ingest.offset > start { attempt = 0 }
                attempt += 1
                guard try await Retry.wait(attempt: attempt, until: deadline) else {
                    throw SyncError(.link, "\(digest): transfer keeps ending early")
                }
            }
        }
    }

    private func commit(_ ingest: Ingest, _ digest: Digest, _ following: GrowingBlob?) throws {
        do {
            try ingest.commit(expected: digest, verified: following.map { blob in { blob.finish() } })
        } catch let error as BlobStore.Error {
            throw SyncError(.corrupt, "\(source.name) sent corrupt content for \(digest): \(error)")
        } catch {
            // The file stays where it is for the next attempt.
            throw SyncError(.storage, "cannot store \(digest): \(error)")
        }
    }
}

/// Exponential backoff with jitter, bounded by a deadline.
enum Retry {
    /// Sleeps before attempt `attempt + 1`; returns false when the deadline would pass.
    ///
    /// Throws ``SyncError`` (cancelled) when the task is cancelled while it sleeps.
    static func wait(attempt: Int, until deadline: Int64) async throws -> Bool {
        let base = min(30.0, 0.5 * Double(1 << min(attempt - 1, 6)))
        let delay = Int64(base * Double.random(in: 0.5...1.0) * 1e9)
        guard MonotonicClock.now() + delay < deadline else { return false }
        do {
            try await Task.sleep(nanoseconds: UInt64(delay))
        } catch {
            throw SyncError(.cancelled, "cancelled")
        }
        return true
    }
}
