import JSONCoding
import Logging
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The durable queue of hook events: one small JSON file per event in one directory.
///
/// - `event-<sequence>.json`: an event whose hooks have not all finished. Written to a temp
///   file, fsync'ed, linked into place and the directory fsync'ed before ``append(_:)``
///   returns; rewritten atomically (durably) when a hook starts and when it finishes; removed
///   (durably) after its last hook finished. Sequence numbers order the events; any process
///   may append (a taken number makes `link` fail and the next one is tried).
/// - `event-<sequence>.prepared`: the first half of a two-phase append (see
///   ``HookRunner/prepare(_:)``); renamed to `.json` by commit.
/// - `lock`: `flock`ed by the one process that runs hooks from this journal at a time.
/// - `history.json`: the last runs, for `status` (not fsync'ed: losing it loses no event).
struct HookJournal: Sendable {
    let directory: String
    let logger: Logger

    init(directory: String, logger: Logger) throws {
        var directory = directory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        self.directory = directory
        self.logger = logger
        try PosixFile.makeDirectories(directory)
    }

    /// What the journal remembers about one event.
    struct Entry: Codable, Sendable, Equatable {
        var version = 1
        var event: HookEvent
        /// Hooks that finished (with any status); never run again for this event.
        var done: [HookKey] = []
        /// The hook that was started and has not finished: if the file still says so at the
        /// next start, the process died (or stopped) while the hook ran.
        var inProgress: HookKey?
        /// How many times `inProgress` was started.
        var attempts = 0
    }

    /// Identifies a hook across restarts: its position in the config and its command.
    struct HookKey: Codable, Sendable, Hashable {
        var index: Int
        var run: String
    }

    struct Record: Sendable {
        var sequence: Int64
        var entry: Entry
    }

    enum Suffix: String {
        case pending = ".json"
        case prepared = ".prepared"
    }

    func path(_ sequence: Int64, _ suffix: Suffix) -> String {
        let digits = String(sequence)
        return "\(directory)/event-\(String(repeating: "0", count: max(0, 12 - digits.count)))\(digits)\(suffix.rawValue)"
    }

    private static func sequence(of name: String, _ suffix: Suffix) -> Int64? {
        guard name.hasPrefix("event-"), name.hasSuffix(suffix.rawValue) else { return nil }
        return Int64(name.dropFirst(6).dropLast(suffix.rawValue.count))
    }

    private static func encode(_ entry: Entry) throws -> [UInt8] {
        try JSONCoder.encode(entry, sortedKeys: true) + [0x0a]
    }

    /// Journals `entry` under the next free sequence number; durable when it returns.
    func append(_ entry: Entry, as suffix: Suffix) throws -> Int64 {
        let bytes = try Self.encode(entry)
        let temp = "\(directory)/.tmp-event-\(PosixFile.randomToken())"
        let fd = try PosixFile.open(temp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            try bytes.withUnsafeBytes { try PosixFile.pwriteAll(fd, $0, at: 0, path: temp) }
            try PosixFile.fsync(fd, path: temp)
            PosixFile.close(fd)
        } catch {
            PosixFile.close(fd)
            try? PosixFile.unlink(temp)
            throw error
        }
        defer { try? PosixFile.unlink(temp) }
        var sequence = try highestSequence() + 1
        while true {
            let target = path(sequence, suffix)
            // link() never replaces: a number another process took makes it fail.
            if link(temp, target) == 0 { break }
            guard errno == EEXIST else { throw PosixError("link", path: target) }
            sequence += 1
        }
        try PosixFile.unlink(temp)
        try PosixFile.fsyncDirectory(directory)
        return sequence
    }

    private func highestSequence() throws -> Int64 {
        try PosixFile.list(directory).compactMap { Self.sequence(of: $0, .pending) ?? Self.sequence(of: $0, .prepared) }
            .max() ?? 0
    }

    /// Rewrites an event's entry atomically; durable when it returns.
    func update(_ record: Record) throws {
        try PosixFile.writeAtomically(path(record.sequence, .pending), try Self.encode(record.entry), durable: true)
    }

    /// Removes a finished event; durable when it returns.
    func remove(_ sequence: Int64, _ suffix: Suffix = .pending) throws {
        try PosixFile.unlink(path(sequence, suffix))
        try PosixFile.fsyncDirectory(directory)
    }

    /// Turns a prepared event into a pending one; durable when it returns.
    func commit(_ sequence: Int64) throws {
        try PosixFile.rename(path(sequence, .prepared), path(sequence, .pending))
        try PosixFile.fsyncDirectory(directory)
    }

    /// Events of one kind, oldest first. A file that does not parse is renamed to
    /// `*.corrupt` (and logged) so that it cannot block the queue.
    func records(_ suffix: Suffix) throws -> [Record] {
        let sequences = try PosixFile.list(directory).compactMap { Self.sequence(of: $0, suffix) }.sorted()
        var records: [Record] = []
        for sequence in sequences {
            let file = path(sequence, suffix)
            do {
                let bytes = try PosixFile.readAll(path: file, limit: 1 << 20)
                records.append(Record(sequence: sequence, entry: try JSONCoder.decode(Entry.self, from: bytes)))
            } catch let error as PosixError where error.isNotFound {
                continue  // finished by another process since the listing
            } catch {
                logger.error(
                    "hook journal entry unreadable; moved aside",
                    metadata: ["file": "\(file)", "error": "\(error)"])
                try? PosixFile.rename(file, "\(file).corrupt")
            }
        }
        return records
    }

    /// Removes temp files left by a process that died while writing (older than 10 minutes,
    /// so that a write in progress in another process is never touched).
    func removeStaleTemporaries() {
        let now = MonotonicClock.wallNow() / 1_000_000_000
        for name in (try? PosixFile.list(directory)) ?? [] where name.hasPrefix(".tmp-") {
            let path = "\(directory)/\(name)"
            if let status = try? PosixFile.status(path), now - status.modified > 600 {
                try? PosixFile.unlink(path)
            }
        }
    }

    /// Reads the journal of another process without changing anything (for `status`).
    static func peek(directory: String) -> [Entry] {
        let names = ((try? PosixFile.list(directory)) ?? []).filter { sequence(of: $0, .pending) != nil }.sorted()
        return names.compactMap { name in
            guard let bytes = try? PosixFile.readAll(path: "\(directory)/\(name)", limit: 1 << 20) else { return nil }
            return try? JSONCoder.decode(Entry.self, from: bytes)
        }
    }

    /// Runs `body` holding the journal's processing lock, waiting (cancellably) while another
    /// process or task holds it. Each call opens the lock file anew, so two tasks of one
    /// process exclude each other too (flock locks belong to the open file description).
    func withProcessingLock<T>(_ body: () async throws -> T) async throws -> T {
        let lockPath = "\(directory)/lock"
        let fd = try PosixFile.open(lockPath, O_RDWR | O_CREAT, mode: 0o600)
        // Closing the descriptor releases the lock.
        defer { PosixFile.close(fd) }
        var waited: Int64 = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK || code == EINTR else { throw PosixError("flock", path: lockPath, code: code) }
            if waited == 1_000_000_000 {
                logger.info("waiting for another process that runs hooks from this journal", metadata: ["lock": "\(lockPath)"])
            }
            try await Task.sleep(nanoseconds: 50_000_000)
            waited += 50_000_000
        }
        return try await body()
    }
}
