#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call, with the path it was about.
public struct PosixError: Error, Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var code: Int32

    public init(_ operation: String, path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(code)))"
    }

    public var isNotFound: Bool { code == ENOENT }
    public var isNoSpace: Bool { code == ENOSPC || code == EDQUOT }
}

/// Thin, EINTR-safe wrappers over the POSIX file calls the store needs. Sizes and offsets
/// are Int64 so that 32-bit targets handle files above 2 GiB (the C side is built with
/// _FILE_OFFSET_BITS=64).
public enum PosixFile {
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw PosixError("open", path: path) }
        }
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public struct Status: Sendable {
        public var size: Int64
        public var isDirectory: Bool
        public var isRegular: Bool
        /// Modification time, seconds since the epoch.
        public var modified: Int64
    }

    public static func status(_ path: String) throws -> Status {
        var st = stat()
        guard stat(path, &st) == 0 else { throw PosixError("stat", path: path) }
        return Status(
            size: Int64(st.st_size), isDirectory: (st.st_mode & S_IFMT) == S_IFDIR,
            isRegular: (st.st_mode & S_IFMT) == S_IFREG, modified: Int64(st.st_mtim.tv_sec))
    }

    /// Whether `path` still names the file open as `fd` (same device and inode).
    public static func sameFile(fd: Int32, path: String) -> Bool {
        var open = stat()
        var named = stat()
        guard fstat(fd, &open) == 0, stat(path, &named) == 0 else { return false }
        return open.st_dev == named.st_dev && open.st_ino == named.st_ino
    }

    public static func status(fd: Int32, path: String) throws -> Status {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw PosixError("fstat", path: path) }
        return Status(
            size: Int64(st.st_size), isDirectory: (st.st_mode & S_IFMT) == S_IFDIR,
            isRegular: (st.st_mode & S_IFMT) == S_IFREG, modified: Int64(st.st_mtim.tv_sec))
    }

    /// Writes all of `buffer` at `offset`.
    public static func pwriteAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int64, path: String) throws {
        var done = 0
        while done < buffer.count {
            guard let base = buffer.baseAddress else { return }
            let n = pwrite(fd, base + done, buffer.count - done, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixError("write", path: path)
            }
            done += n
        }
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns fewer only at end of file.
    public static func preadFull(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int64, path: String) throws -> Int {
        var done = 0
        while done < buffer.count {
            guard let base = buffer.baseAddress else { return 0 }
            let n = pread(fd, base + done, buffer.count - done, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixError("read", path: path)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public static func fsync(_ fd: Int32, path: String) throws {
        while Glibc.fsync(fd) != 0 {
            if errno != EINTR { throw PosixError("fsync", path: path) }
        }
    }

    /// fsyncs a directory so that a rename or create inside it survives power loss.
    public static func fsyncDirectory(_ path: String) throws {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    public static func truncate(_ fd: Int32, to size: Int64, path: String) throws {
        guard ftruncate(fd, off_t(size)) == 0 else { throw PosixError("truncate", path: path) }
    }

    public static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw PosixError("rename", path: "\(from) -> \(to)") }
    }

    /// Removes a file; a missing file is not an error.
    public static func unlink(_ path: String) throws {
        if Glibc.unlink(path) != 0, errno != ENOENT { throw PosixError("unlink", path: path) }
    }

    /// Creates a directory and its parents.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) == 0 || errno == EEXIST { return }
        guard errno == ENOENT else { throw PosixError("mkdir", path: path) }
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else {
            throw PosixError("mkdir", path: path, code: ENOENT)
        }
        try makeDirectories(String(path[..<slash]), mode: mode)
        if mkdir(path, mode) != 0, errno != EEXIST { throw PosixError("mkdir", path: path) }
    }

    /// Names in a directory, without "." and "..". A missing directory lists as empty.
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT || errno == ENOTDIR { return [] }
            throw PosixError("opendir", path: path)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a file or a directory tree; missing is fine.
    public static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw PosixError("lstat", path: path)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree("\(path)/\(name)") }
            if rmdir(path) != 0, errno != ENOENT { throw PosixError("rmdir", path: path) }
        } else {
            try unlink(path)
        }
    }

    /// Removes a directory only if it is empty; anything else is left alone.
    public static func removeDirectoryIfEmpty(_ path: String) {
        _ = rmdir(path)
    }

    /// Reads a small file whole; throws if it is larger than `limit`.
    public static func readAll(path: String, limit: Int) throws -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        var offset: Int64 = 0
        while true {
            let n = try chunk.withUnsafeMutableBytes { try preadFull(fd, $0, at: offset, path: path) }
            result.append(contentsOf: chunk[0..<n])
            offset += Int64(n)
            if result.count > limit { throw PosixError("read", path: path, code: EFBIG) }
            if n < chunk.count { return result }
        }
    }

    /// Replaces `path` with `bytes` atomically: a temp file in the same directory (created
    /// with `mode`), fsync'ed when `durable`, renamed over the target, and the directory
    /// fsync'ed.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], durable: Bool, mode: mode_t = 0o644) throws {
        guard let slash = path.lastIndex(of: "/") else { throw PosixError("write", path: path, code: EINVAL) }
        let directory = String(path[..<slash])
        let temp = "\(directory)/.tmp-\(String(path[path.index(after: slash)...]).prefix(64))-\(randomToken())"
        let fd: Int32
        do {
            fd = try open(temp, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        } catch let error as PosixError where error.isNotFound {
            try makeDirectories(directory)
            fd = try open(temp, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        }
        do {
            try bytes.withUnsafeBytes { try pwriteAll(fd, $0, at: 0, path: temp) }
            if durable { try fsync(fd, path: temp) }
            close(fd)
            try rename(temp, path)
        } catch {
            close(fd)
            try? unlink(temp)
            throw error
        }
        if durable { try fsyncDirectory(directory) }
    }

    /// Creates an empty marker file (and its directory) if it does not exist.
    public static func touch(_ path: String, durable: Bool) throws {
        let fd: Int32
        do {
            fd = try open(path, O_WRONLY | O_CREAT)
        } catch let error as PosixError where error.isNotFound {
            guard let slash = path.lastIndex(of: "/") else { throw error }
            try makeDirectories(String(path[..<slash]))
            fd = try open(path, O_WRONLY | O_CREAT)
        }
        close(fd)
        if durable, let slash = path.lastIndex(of: "/") {
            try fsyncDirectory(String(path[..<slash]))
        }
    }

    /// 16 random bytes in hex, from the system's secure generator.
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Digest.hexString(bytes)
    }
}
