import OCICore
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The store's writer lock (`<store>/sync/lock`, flock): one sync pass or garbage collection
/// at a time, across processes. A second writer waits and says so. Readers (the registry)
/// never take it.
public final class StoreLock: Sendable {
    private let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    public static func acquire(store: BlobStore, logger: Logger) throws -> StoreLock {
        try PosixFile.makeDirectories(store.layout.sync)
        let path = store.layout.writerLock
        let fd = try PosixFile.open(path, O_RDWR | O_CREAT)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? PosixFile.readAll(path: path, limit: 64)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
            logger.notice("another satellite-lite process is syncing or collecting garbage in this store; waiting for it", metadata: ["pid": "\(holder)"])
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR {
                    PosixFile.close(fd)
                    throw PosixError("flock", path: path)
                }
            }
        }
        return locked(fd)
    }

    /// Takes the lock from async code: waits with a task sleep between attempts instead of
    /// blocking a thread of the cooperative pool (a pass waiting for a `gc` run by hand must
    /// not starve the tasks beside it).
    ///
    /// Throws ``PosixError`` when the lock file cannot be opened or locked, CancellationError
    /// when the task is cancelled while it waits.
    public static func acquire(store: BlobStore, logger: Logger) async throws -> StoreLock {
        try PosixFile.makeDirectories(store.layout.sync)
        let path = store.layout.writerLock
        let fd = try PosixFile.open(path, O_RDWR | O_CREAT)
        var announced = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let error = PosixError("flock", path: path)
                PosixFile.close(fd)
                throw error
            }
            if !announced {
                announced = true
                let holder = (try? PosixFile.readAll(path: path, limit: 64)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
                logger.notice(
                    "another satellite-lite process is syncing or collecting garbage in this store; waiting for it",
                    metadata: ["pid": "\(holder)"])
            }
            do {
                try await Task.sleep(nanoseconds: 100_000_000)
            } catch {
                PosixFile.close(fd)
                throw error
            }
        }
        return locked(fd)
    }

    private static func locked(_ fd: Int32) -> StoreLock {
        _ = ftruncate(fd, 0)
        let pid = Array(String(getpid()).utf8)
        pid.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, 0) }
        return StoreLock(fd: fd)
    }

    public func release() {
        flock(fd, LOCK_UN)
        PosixFile.close(fd)
    }
}

