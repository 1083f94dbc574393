import OCICore
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// When each blob was last served or referenced, for least-recently-used eviction on flash
/// mounted `noatime`: recorded in memory on every read (a dictionary update, no I/O) and
/// written to `<store>/gc/access` now and then, so that other processes (a `gc` or `sync`
/// run by hand next to `serve`) and a restart see the order:
/// - at most ``flushDelay`` seconds after a use, by a background flush;
/// - when the store is released or the process exits (`exit`, a return from `main`), so
///   a short `sync` records the blobs its desired state used.
///
/// The file is a text line per blob, `<seconds> <algorithm>:<hex>`, replaced atomically.
/// Entries of blobs that are no longer stored are dropped when it is written.
public final class AccessLog: Sendable {
    /// Seconds between a use and the background flush that records it. Garbage collection
    /// keeps what was used within the profile's grace period (minutes), so a use another
    /// process has not seen yet cannot make it evict a blob in use.
    public static let flushDelay = 30

    private let root: String
    private let path: String
    private let state = Mutex<State>(State())

    private struct State {
        var times: [Digest: Int64] = [:]
        var dirty = false
        var loaded = false
        var flushScheduled = false
        /// The file's content as last parsed, valid while its identity is unchanged.
        var file: (key: FileKey, times: [Digest: Int64])?
    }

    /// Identity of one version of the file: it is only ever replaced by a rename.
    private struct FileKey: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var seconds: Int64
        var nanoseconds: Int
    }

    private let layout: StoreLayout

    init(layout: StoreLayout, path: String) {
        self.layout = layout
        self.root = layout.root
        self.path = path
        _ = Self.exitHook
        Self.live.withLock { $0[ObjectIdentifier(self)] = Weak(log: self) }
    }

    deinit {
        let id = ObjectIdentifier(self)
        _ = Self.live.withLock { $0.removeValue(forKey: id) }
        flush()
    }

    /// Notes that `digest` was used: just now, or at `time` (seconds since the epoch; tests
    /// make content look old with it).
    public func touch(_ digest: Digest, at time: Int64? = nil) {
        let now = time ?? MonotonicClock.wallSeconds()
        let schedule = state.withLock { state -> Bool in
            if state.times[digest] != now {
                state.times[digest] = now
                state.dirty = true
            }
            guard state.dirty, !state.flushScheduled else { return false }
            state.flushScheduled = true
            return true
        }
        if schedule {
            DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .seconds(Self.flushDelay)) { [weak self] in
                guard let self else { return }
                self.state.withLock { $0.flushScheduled = false }
                self.flush()
            }
        }
    }

    /// Last use known for each blob (this process's and what the file holds from others).
    public func snapshot() -> [Digest: Int64] {
        loadIfNeeded()
        var merged = readFile()
        for (digest, time) in state.withLock({ $0.times }) where time > merged[digest] ?? 0 {
            merged[digest] = time
        }
        return merged
    }

    /// Last use known for one blob: cheap enough to ask for every blob of a sweep (a stat
    /// of the file, which is parsed again only when another process replaced it).
    public func lastUse(_ digest: Digest) -> Int64? {
        let fromFile = readFile()[digest]
        let own = state.withLock { $0.times[digest] }
        switch (fromFile, own) {
        case (let a?, let b?): return max(a, b)
        case (let a?, nil): return a
        case (nil, let b?): return b
        case (nil, nil): return nil
        }
    }

    private func loadIfNeeded() {
        let needed = state.withLock { !$0.loaded }
        guard needed else { return }
        let fromFile = readFile()
        state.withLock { state in
            for (digest, time) in fromFile where time > state.times[digest] ?? 0 { state.times[digest] = time }
            state.loaded = true
        }
    }

    private func fileKey() -> FileKey? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileKey(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size), seconds: Int64(st.st_mtim.tv_sec),
            nanoseconds: Int(st.st_mtim.tv_nsec))
    }

    private func readFile() -> [Digest: Int64] {
        guard let key = fileKey() else { return [:] }
        if let cached = state.withLock({ $0.file }), cached.key == key { return cached.times }
        guard let bytes = try? PosixFile.readAll(path: path, limit: 64 << 20) else { return [:] }
        let result = Self.parse(bytes)
        // Keep it only if the file did not change while it was read.
        if fileKey() == key { state.withLock { $0.file = (key, result) } }
        return result
    }

    private static func parse(_ bytes: [UInt8]) -> [Digest: Int64] {
        var result: [Digest: Int64] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let time = Int64(parts[0]), let digest = Digest(parts[1]) {
                result[digest] = max(time, result[digest] ?? 0)
            }
        }
        return result
    }

    /// Writes the merged times to disk if anything changed since the last flush.
    public func flush(forgetting removed: Set<Digest> = []) {
        loadIfNeeded()
        let dirty = state.withLock { $0.dirty }
        guard dirty || !removed.isEmpty else { return }
        // A store that is gone (a test's temporary directory) is not created again.
        guard (try? PosixFile.status(root))?.isDirectory == true else { return }
        var merged = readFile()
        let times = state.withLock { state in
            for digest in removed { state.times[digest] = nil }
            state.dirty = false
            return state.times
        }
        for (digest, time) in times where time > merged[digest] ?? 0 { merged[digest] = time }
        for digest in removed { merged[digest] = nil }
        var text = ""
        var stale: [Digest] = []
        for (digest, time) in merged {
            // Removed by another process (a `gc` next to `serve`): forget it.
            guard PosixFile.exists(layout.blob(digest)) else {
                stale.append(digest)
                continue
            }
            text += "\(time) \(digest)\n"
        }
        if !stale.isEmpty {
            state.withLock { state in
                for digest in stale { state.times[digest] = nil }
            }
        }
        if let slash = path.lastIndex(of: "/") { try? PosixFile.makeDirectories(String(path[..<slash])) }
        try? PosixFile.writeAtomically(path, Array(text.utf8), durable: false)
    }

    // MARK: Flush at exit

    private struct Weak: @unchecked Sendable {
        weak var log: AccessLog?
    }

    private static let live = Mutex<[ObjectIdentifier: Weak]>([:])

    /// Registered once, when the first log is made.
    private static let exitHook: Void = {
        atexit { AccessLog.flushAll() }
    }()

    private static func flushAll() {
        let logs = live.withLock { $0.values.compactMap(\.log) }
        for log in logs { log.flush() }
    }
}
