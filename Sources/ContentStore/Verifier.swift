#if canImport(Glibc)
import OCICore
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Re-hashes every blob through one bounded buffer; a blob whose bytes no longer match its
/// digest (bit rot, a bad card, a hand edit) moves to `<store>/quarantine/` so that it is no
/// longer served, and the next sync fetches it again.
public enum Verifier {
    public struct Report: Sendable {
        public var checked = 0
        public var checkedBytes: Int64 = 0
        public var corrupt: [Digest] = []
        /// `repository:tag` whose content included a corrupt blob.
        public var brokenImages: [String] = []
    }

    public static func verify(store: BlobStore, progress: (Int, Int) -> Void = { _, _ in }) throws -> Report {
        var report = Report()
        let blobs = try store.allBlobs()
        var buffer = [UInt8](repeating: 0, count: store.configuration.bufferSize)
        for (index, digest) in blobs.enumerated() {
            progress(index, blobs.count)
            let path = store.blobPath(digest)
            guard let fd = try? PosixFile.open(path, O_RDONLY) else { continue }
            let hasher = ContentHasher(digest.algorithm)
            var offset: Int64 = 0
            var failed = false
            while true {
                let n: Int
                do {
                    n = try buffer.withUnsafeMutableBytes { try PosixFile.preadFull(fd, $0, at: offset, path: path) }
                } catch {
                    failed = true
                    break
                }
                if n == 0 { break }
                buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                offset += Int64(n)
            }
            PosixFile.close(fd)
            report.checked += 1
            report.checkedBytes += offset
            if failed || hasher.digest() != digest {
                do {
                    try quarantine(store: store, digest)
                } catch let error as PosixError where error.isNotFound {
                    // Removed meanwhile (a garbage collection next to this run): nothing to quarantine.
                    continue
                }
                report.corrupt.append(digest)
            }
        }
        if !report.corrupt.isEmpty {
            let corrupt = Set(report.corrupt)
            for repository in try store.repositories() {
                for tag in try store.tags(repository) {
                    guard let top = store.resolveTag(repository, tag) else { continue }
                    if closure(store: store, top).contains(where: corrupt.contains) {
                        report.brokenImages.append("\(repository):\(tag)")
                    }
                }
            }
        }
        return report
    }

    /// Moves a blob out of the store into `quarantine/`, keeping it for inspection.
    static func quarantine(store: BlobStore, _ digest: Digest) throws {
        let directory = store.layout.quarantine
        try PosixFile.makeDirectories(directory)
        let size = store.blobSize(digest) ?? 0
        try PosixFile.rename(store.blobPath(digest), "\(directory)/\(digest.algorithm.rawValue)-\(digest.hex)")
        store.usage.record(-size)
    }

    /// Every digest a manifest reaches (itself included), as far as the store holds them.
    static func closure(store: BlobStore, _ digest: Digest) -> Set<Digest> {
        var result: Set<Digest> = [digest]
        var pending = [digest]
        while let next = pending.popLast() {
            guard let bytes = try? store.readBlob(next, limit: Manifest.maxSize), let manifest = try? Manifest.parse(bytes) else {
                continue
            }
            for descriptor in manifest.references {
                if let child = Digest(descriptor.digest), result.insert(child).inserted { pending.append(child) }
            }
        }
        return result
    }
}
