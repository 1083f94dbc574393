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

