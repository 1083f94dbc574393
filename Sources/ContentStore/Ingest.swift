import OCICore
import CSatelliteSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A blob being written into the store: an upload session's data or a download from the
/// upstream. Bytes are hashed as they arrive and land directly in this file, which lives on
/// the store's filesystem; ``commit(expected:)`` verifies the digest and renames the file
/// into place, so nothing unverified is ever visible.
///
/// Resumable downloads keep a sidecar holding the last fsync'ed offset and the boot it was
/// written in: after a process crash the whole file is trusted (the kernel kept every byte
/// written), after a reboot or power cut the file is cut back to the fsync'ed offset; either
/// way the kept prefix is re-hashed.
///
/// An ingest is driven by one transfer at a time (the upload session or download that owns
/// it serialises every call), hence `@unchecked Sendable`. A download's ingest is claimed
/// (``BlobStore/claimDownload(_:)``): no second writer of its digest, in this process or
/// another, opens it until it is committed, discarded or suspended.
public final class Ingest: @unchecked Sendable {
    public let path: String
    private let store: BlobStore
    private var fd: Int32
    private let hasher: ContentHasher
    /// Bytes written (and hashed) so far.
    public private(set) var offset: Int64 = 0
    /// Bytes known to be on stable storage.
    public private(set) var durableOffset: Int64 = 0
    /// Where writeback was last started: the kernel flushes behind the writer, so the fsync
    /// at commit does not wait for the whole blob.
    private var writebackOffset: Int64 = 0
    private let offsetPath: String?
    /// Bytes between two checkpoints while writing (the profile's `fsyncInterval`). A
    /// download whose partial file matters less than its speed (a proxied blob, which a
    /// client is waiting for) raises it: each checkpoint waits for the disk, and a slow disk
    /// then caps the transfer. Its partial file still resumes after a link cut (checkpointed
    /// then) or a killed process (trusted whole in the same boot).
    public var checkpointInterval: Int64
    private var closed = false
    /// Called once when the file is closed: releases the claim on the digest.
    private let onClose: (@Sendable () -> Void)?

    /// Opens or creates the file at `path`. With `offsetPath`, an existing file is cut back to
    /// the durable offset recorded there; without, the whole existing file is trusted (upload
    /// sessions, which the client re-checks with the upload status). Either way the kept
    /// prefix is re-hashed so the digest covers it.
    init(
        store: BlobStore, path: String, offsetPath: String?, algorithm: Digest.Algorithm = .sha256, fd openFD: Int32? = nil,
        onClose: (@Sendable () -> Void)? = nil
    ) throws {
        self.store = store
        self.hasher = ContentHasher(algorithm)
        self.path = path
        self.offsetPath = offsetPath
        self.onClose = onClose
        checkpointInterval = store.configuration.fsyncInterval
        do {
            fd = try openFD ?? PosixFile.open(path, O_RDWR | O_CREAT)
        } catch {
            onClose?()
            throw error
        }
        do {
            let size = try PosixFile.status(fd: fd, path: path).size
            var keep = size
            if let offsetPath {
                keep = min(size, Self.trustedLength(sidecar: offsetPath, fileSize: size))
            }
            if keep != size { try PosixFile.truncate(fd, to: keep, path: path) }
            if keep > 0 { try rehash(upTo: keep) }
            offset = keep
            durableOffset = keep
            if let offsetPath {
                // Bytes trusted from the page cache become durable now, before the sidecar
                // says so; a new file gets its sidecar at once, so even a crash before the
                // first checkpoint resumes.
                if keep > 0 { try PosixFile.fsync(fd, path: path) }
                try Self.writeSidecar(offsetPath, durable: keep)
            }
        } catch {
            PosixFile.close(fd)
            onClose?()
            throw error
        }
    }

    deinit {
        if !closed { closeFile() }
    }

    /// Closes the descriptor (which drops its file lock) and releases the claim.
    private func closeFile() {
        PosixFile.close(fd)
        closed = true
        onClose?()
    }

    private func rehash(upTo length: Int64) throws {
        try Self.hash(fd: fd, path: path, length: length, into: hasher, bufferSize: store.configuration.bufferSize)
    }

    /// Feeds the first `length` bytes of a file to `hasher` through one bounded buffer.
    static func hash(fd: Int32, path: String, length: Int64, into hasher: ContentHasher, bufferSize: Int) throws {
        var buffer = [UInt8](repeating: 0, count: bufferSize)
        var position: Int64 = 0
        while position < length {
            let want = Int(min(Int64(buffer.count), length - position))
            let n = try buffer.withUnsafeMutableBytes { raw in
                try PosixFile.preadFull(fd, UnsafeMutableRawBufferPointer(rebasing: raw[0..<want]), at: position, path: path)
            }
            guard n > 0 else { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            position += Int64(n)
        }
    }

    /// Appends bytes: hashes them and writes them at the current offset. Every
    /// `fsyncInterval` bytes the file is made durable and the sidecar updated.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !closed else { throw PosixError("write", path: path, code: EBADF) }
        guard bytes.count > 0 else { return }
        try PosixFile.pwriteAll(fd, bytes, at: offset, path: path)
        hasher.update(bytes)
        offset += Int64(bytes.count)
        if offsetPath != nil, offset - durableOffset >= checkpointInterval {
            try checkpoint()
        } else if store.configuration.fsyncOnCommit, offset - writebackOffset >= Self.writebackStep {
            _ = csystem_start_writeback(fd, writebackOffset, offset - writebackOffset)
            writebackOffset = offset
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Bytes between two writeback starts.
    static let writebackStep: Int64 = 8 << 20

    /// The kernel's id for this boot: unchanged across process crashes, new after a reboot
    /// or power cut.
    static let bootID: String = {
        guard let bytes = try? PosixFile.readAll(path: "/proc/sys/kernel/random/boot_id", limit: 64) else { return "" }
        return String(decoding: bytes, as: UTF8.self).trimmed()
    }()

    /// The sidecar: `<durable offset> <boot id>`.
    static func writeSidecar(_ path: String, durable: Int64) throws {
        try PosixFile.writeAtomically(path, Array("\(durable) \(bootID)".utf8), durable: false)
    }

    /// How much of a partial download to trust. After a process crash in the same boot the
    /// page cache kept every byte the process wrote, so the whole file is good; after a
    /// reboot or power cut only what was fsync'ed is (the sidecar's offset).
    static func trustedLength(sidecar path: String, fileSize: Int64) -> Int64 {
        guard let bytes = try? PosixFile.readAll(path: path, limit: 128) else { return 0 }
        let parts = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard let durable = parts.first.flatMap({ Int64($0) }) else { return 0 }
        if parts.count > 1, !bootID.isEmpty, parts[1] == bootID { return fileSize }
        return max(0, min(durable, fileSize))
    }

    /// Starts over from zero bytes (the upstream ignored a range request).
    public func reset() throws {
        guard !closed else { throw PosixError("reset", path: path, code: EBADF) }
        try PosixFile.truncate(fd, to: 0, path: path)
        hasher.reset()
        offset = 0
        durableOffset = 0
        if let offsetPath { try Self.writeSidecar(offsetPath, durable: 0) }
    }

    /// Makes everything written so far durable and records the offset for a later resume.
    public func checkpoint() throws {
        guard !closed, offset != durableOffset else { return }
        try PosixFile.fsync(fd, path: path)
        durableOffset = offset
        if let offsetPath { try Self.writeSidecar(offsetPath, durable: offset) }
    }

    /// The digest of the bytes so far.
    public var digest: Digest { hasher.digest() }

    /// Verifies the digest and moves the file into the blob store. `verified` is called once
    /// the digest matched, before the file is made durable and renamed: readers of the file
    /// may then send its last bytes without waiting for the disk.
    ///
    /// Throws ``BlobStore/Error/digestMismatch`` (and deletes the file) when the content does
    /// not hash to `expected`; the caller's previous state stays as it was.
    @discardableResult
    public func commit(expected: Digest?, verified: (() -> Void)? = nil) throws -> Digest {
        guard !closed else { throw PosixError("commit", path: path, code: EBADF) }
        var actual = hasher.digest()
        if let expected, expected.algorithm != hasher.algorithm {
            // The client announced another algorithm only at the end: one more read pass,
            // which only uploads with a non-default algorithm pay.
            let other = ContentHasher(expected.algorithm)
            try Self.hash(fd: fd, path: path, length: offset, into: other, bufferSize: store.configuration.bufferSize)
            actual = other.digest()
        }
        if let expected, expected != actual {
            discard()
            throw BlobStore.Error.digestMismatch(expected: expected, actual: actual)
        }
        verified?()
        if store.configuration.fsyncOnCommit { try PosixFile.fsync(fd, path: path) }
        // Installed before the descriptor closes: a writer waiting for this digest's lock
        // then finds the blob in place.
        do {
            try store.install(file: path, as: actual)
        } catch {
            closeFile()
            throw error
        }
        if let offsetPath { try? PosixFile.unlink(offsetPath) }
        closeFile()
        return actual
    }

    /// Closes and deletes the file (and its sidecar).
    public func discard() {
        try? PosixFile.unlink(path)
        if let offsetPath { try? PosixFile.unlink(offsetPath) }
        if !closed { closeFile() }
    }

    /// Closes the file but keeps it (and its sidecar) for a later resume.
    public func suspend() throws {
        guard !closed else { return }
        defer { closeFile() }
        try checkpoint()
    }
}
