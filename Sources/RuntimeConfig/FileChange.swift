import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One file runtime-config manages: what it holds now and what it should hold.
public struct FileChange: Sendable, Equatable {
    /// The path on the target system, e.g. `/etc/docker/daemon.json`.
    public var path: String
    /// Where it is on this machine (`--root` + path).
    public var location: String
    /// Current content; nil when the file does not exist.
    public var before: [UInt8]?
    public var after: [UInt8]

    public var isChange: Bool { before != after }

    /// Where the previous content is kept when the file is replaced.
    public var backupLocation: String { "\(location).satellite-lite.bak" }

    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        case unchanged(path: String)
        case created(path: String)
        /// Replaced; the previous content is in `backup`.
        case updated(path: String, backup: String)

        public var description: String {
            switch self {
            case .unchanged(let path): "unchanged \(path)"
            case .created(let path): "created   \(path)"
            case .updated(let path, let backup): "updated   \(path) (previous content in \(backup))"
            }
        }
    }

    /// Writes `after` if it differs from `before`: backup first (when the file exists), then
    /// a temp file in the same directory, fsync'ed and renamed over the file, keeping its mode
    /// and owner. Nothing is written when nothing changes.
    ///
    /// Throws ``RuntimeConfig/Error`` naming the file; a failure leaves the old file in place.
    public func apply() throws -> Outcome {
        guard isChange else { return .unchanged(path: location) }
        do {
            var existing = stat()
            let exists = stat(location, &existing) == 0
            if let before, exists {
                try Self.writeAtomically(backupLocation, before, like: existing)
                try Self.writeAtomically(location, after, like: existing)
                return .updated(path: location, backup: backupLocation)
            }
            try Self.writeAtomically(location, after, like: nil)
            return .created(path: location)
        } catch {
            throw RuntimeConfig.Error("cannot write \(location): \(error)")
        }
    }

    /// Replaces `path` atomically and durably with the mode and owner of `like` (0644 when nil).
    static func writeAtomically(_ path: String, _ bytes: [UInt8], like: stat?) throws {
        guard let slash = path.lastIndex(of: "/") else { throw PosixError("write", path: path, code: EINVAL) }
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        try PosixFile.makeDirectories(directory)
        let temp = "\(directory)/.satellite-lite-\(PosixFile.randomToken())"
        let fd = try PosixFile.open(temp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            defer { PosixFile.close(fd) }
            try bytes.withUnsafeBytes { try PosixFile.pwriteAll(fd, $0, at: 0, path: temp) }
            if let like {
                // Ownership can only be kept by root; anyone else keeps their own.
                _ = fchown(fd, like.st_uid, like.st_gid)
                guard fchmod(fd, like.st_mode & 0o7777) == 0 else { throw PosixError("chmod", path: temp) }
            } else {
                guard fchmod(fd, 0o644) == 0 else { throw PosixError("chmod", path: temp) }
            }
            try PosixFile.fsync(fd, path: temp)
        } catch {
            try? PosixFile.unlink(temp)
            throw error
        }
        do {
            try PosixFile.rename(temp, path)
        } catch {
            try? PosixFile.unlink(temp)
            throw error
        }
        try PosixFile.fsyncDirectory(directory)
    }

    /// The change as a unified diff (`diff -u` style, 3 lines of context).
    public var diff: String {
        UnifiedDiff.make(
            old: before.map { String(decoding: $0, as: UTF8.self) } ?? "",
            new: String(decoding: after, as: UTF8.self),
            oldName: before == nil ? "/dev/null" : path, newName: path)
    }
}
