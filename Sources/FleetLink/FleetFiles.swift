import Fleet
import JSONCoding
import ContentStore
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The fleet link's files in the store (`<storage.path>/fleet/`):
///
/// ```
/// fleet/link.json     the ZTR answer: name, registry URL and credentials, state reference (0600)
/// fleet/config.json   the last good remote config (0600: it may hold hooks)
/// fleet/status.json   applied digests, last heartbeat, refused configs (no secrets)
/// ```
public struct FleetFiles: Sendable {
    public let folder: String

    public init(storeRoot: String) {
        folder = StoreLayout(root: storeRoot).fleet
    }

    public var link: String { "\(folder)/link.json" }
    public var config: String { "\(folder)/config.json" }
    public var status: String { "\(folder)/status.json" }

    /// Writes `bytes` to `path` atomically and durably with mode 0600: a temp file created
    /// 0600 (never readable by others, not even for an instant), fsync'ed, renamed over the
    /// target, the folder fsync'ed. A crash leaves the old file or the new one, never half.
    ///
    /// Throws ``PosixError``.
    public static func writePrivate(_ path: String, _ bytes: [UInt8]) throws {
        guard let slash = path.lastIndex(of: "/") else { throw PosixError("write", path: path, code: EINVAL) }
        let directory = String(path[..<slash])
        try PosixFile.makeDirectories(directory, mode: 0o700)
        let temp = "\(directory)/.tmp-\(PosixFile.randomToken())"
        let fd = try PosixFile.open(temp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            // The mode given to open is masked by the umask; 0600 is what we want whatever it is.
            guard fchmod(fd, 0o600) == 0 else { throw PosixError("chmod", path: temp) }
            try bytes.withUnsafeBytes { try PosixFile.pwriteAll(fd, $0, at: 0, path: temp) }
            try PosixFile.fsync(fd, path: temp)
            PosixFile.close(fd)
            try PosixFile.rename(temp, path)
        } catch {
            PosixFile.close(fd)
            try? PosixFile.unlink(temp)
            throw error
        }
        try PosixFile.fsyncDirectory(directory)
    }

    /// Reads and decodes a JSON file; nil when it does not exist.
    ///
    /// Throws when it exists but cannot be read or decoded.
    static func read<T: Decodable>(_ type: T.Type, _ path: String) throws -> T? {
        let bytes: [UInt8]
        do {
            bytes = try PosixFile.readAll(path: path, limit: 4 << 20)
        } catch let error as PosixError where error.isNotFound {
            return nil
        }
        return try JSONCoder.decode(T.self, from: bytes)
    }
}

/// Unix time in seconds.
func unixNow() -> Int64 { Int64(time(nil)) }
