import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// When each blob was last served or referenced, for least-recently-used eviction on flash
/// mounted `noatime`: recorded in memory on every read (a dictionary update, no I/O) and
/// written to `<store>/gc/access` now and then, so a restart keeps the order roughly right.
///
/// The file is a text line per blob, `<seconds> <algorithm>:<hex>`, replaced atomically.
public final class AccessLog: Sendable {
    private let path: String
    private let state = Mutex<State>(State())

    private struct State {
        var times: [Digest: Int64] = [:]
        var dirty = false
        var loaded = false
    }

    init(root: String) {
        path = "\(root)/gc/access"
    }

    static func now() -> Int64 { Int64(time(nil)) }

    /// Notes that `digest` was just used.
    public func touch(_ digest: Digest) {
        let now = Self.now()
        state.withLock { state in
            if state.times[digest] != now {
                state.times[digest] = now
                state.dirty = true
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

    private func loadIfNeeded() {
        let needed = state.withLock { !$0.loaded }
        guard needed else { return }
        let fromFile = readFile()
        state.withLock { state in
            for (digest, time) in fromFile where time > state.times[digest] ?? 0 { state.times[digest] = time }
            state.loaded = true
        }
    }

    private func readFile() -> [Digest: Int64] {
        guard let bytes = try? PosixFile.readAll(path: path, limit: 64 << 20) else { return [:] }
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
        var merged = readFile()
        let times = state.withLock { state in
            for digest in removed { state.times[digest] = nil }
            state.dirty = false
            return state.times
        }
        for (digest, time) in times where time > merged[digest] ?? 0 { merged[digest] = time }
        for digest in removed { merged[digest] = nil }
        var text = ""
        for (digest, time) in merged { text += "\(time) \(digest)\n" }
        if let slash = path.lastIndex(of: "/") { try? PosixFile.makeDirectories(String(path[..<slash])) }
        try? PosixFile.writeAtomically(path, Array(text.utf8), durable: false)
    }
}
