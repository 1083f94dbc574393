import ContentStore
import JSONCoding
import Logging
import OCICore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The watch folder of `run` (`bundles.watch`, e.g. a USB mount): a bundle file (`*.tar`,
/// `*.bundle`) is imported once it is complete (a `<file>.done` marker, or its size and
/// mtime unchanged for `settle`), then recorded in `bundles/watched.json` by name, size and
/// mtime, so it is never imported twice. A bad bundle is logged, recorded with its error
/// (shown by `status`), announced as a `sync-failed` hook event, and left where it is.
public final class BundleWatcher: Sendable {
    public let folder: String
    /// Nanoseconds a file's size must stay unchanged.
    public let settle: Int64
    private let importer: BundleImporter
    private let logger: Logger
    /// Files seen but not complete yet: name -> (size, mtime, first seen with these, monotonic ns).
    private let pending = Mutex<[String: (Int64, Int64, Int64)]>([:])

    public init(folder: String, settle: Int64, importer: BundleImporter, logger: Logger) {
        self.folder = folder
        self.settle = settle
        self.importer = importer
        self.logger = logger
    }

    /// What the watcher did with each file.
    struct Record: Codable {
        struct File: Codable {
            var size: Int64
            var mtime: Int64
            /// imported, already-applied, refused.
            var result: String
            var message: String
            var at: Int64
        }
        var files: [String: File] = [:]
        var lastError: String?
    }

    static func readRecord(store: BlobStore) -> Record {
        guard let bytes = try? PosixFile.readAll(path: store.layout.watchedBundles, limit: 4 << 20),
            let record = try? JSONCoder.decode(Record.self, from: bytes)
        else { return Record() }
        return record
    }

    /// The last refusal of the watch folder, for `status`; nil when the last file imported.
    public static func lastError(store: BlobStore) -> String? { readRecord(store: store).lastError }

    private var store: BlobStore { importer.store }

    /// Scans the folder every `interval` nanoseconds until cancelled.
    public func run(interval: Int64) async {
        logger.info("watching for bundles", metadata: ["folder": "\(folder)"])
        while !Task.isCancelled {
            await scanOnce()
            do { try await Task.sleep(nanoseconds: UInt64(max(100_000_000, interval))) } catch { return }
        }
    }

    /// One look at the folder: imports each complete, new bundle file. Returns the files handled.
    @discardableResult
    public func scanOnce() async -> [String] {
        guard let names = try? PosixFile.list(folder) else { return [] }
        var handled: [String] = []
        var record = Self.readRecord(store: store)
        let now = MonotonicClock.now()
        for name in names.sorted() where !name.hasPrefix(".") && (name.hasSuffix(".tar") || name.hasSuffix(".bundle")) {
            let path = "\(folder)/\(name)"
            guard let status = try? PosixFile.status(path), status.isRegular else { continue }
            let mtime = Self.mtime(path)
            if let known = record.files[name], known.size == status.size, known.mtime == mtime { continue }
            if !PosixFile.exists("\(path).done") {
                let stable = pending.withLock { table -> Bool in
                    if let seen = table[name], seen.0 == status.size, seen.1 == mtime {
                        return now - seen.2 >= settle
                    }
                    table[name] = (status.size, mtime, now)
                    return false
                }
                guard stable else { continue }
            }
            pending.withLock { _ = $0.removeValue(forKey: name) }
            var entry = Record.File(size: status.size, mtime: mtime, result: "imported", message: "", at: Int64(time(nil)))
            do {
                let report = try await importer.importBundle(at: path)
                if report.alreadyApplied {
                    entry.result = "already-applied"
                    entry.message = "bundle \(report.sequence) was applied before"
                } else if !report.complete {
                    entry.result = "refused"
                    entry.message = report.failures.map { "\($0.image): \($0.error)" }.joined(separator: "; ")
                } else {
                    entry.message = "bundle \(report.sequence): \(report.updated.count) image(s) updated"
                }
            } catch {
                if Task.isCancelled { return handled }
                entry.result = "refused"
                entry.message = "\(error)"
            }
            if entry.result == "refused" {
                logger.error("bundle refused", metadata: ["file": "\(path)", "error": "\(entry.message)"])
                record.lastError = "\(path): \(entry.message)"
                try? importer.publisher.events?.record(SyncEvent(kind: .syncFailed, message: "bundle \(path) refused: \(entry.message)"))
            } else {
                logger.info("bundle handled", metadata: ["file": "\(path)", "result": "\(entry.result)", "message": "\(entry.message)"])
                record.lastError = nil
            }
            record.files[name] = entry
            do {
                try PosixFile.makeDirectories(store.layout.bundles)
                try PosixFile.writeAtomically(store.layout.watchedBundles, JSONCoder.encode(record), durable: true)
            } catch {
                logger.error("cannot record the watch folder", metadata: ["error": "\(error)"])
            }
            handled.append(name)
        }
        return handled
    }

    static func mtime(_ path: String) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}
