import ContentStore
import Logging
import OCICore
import Synchronization
import TestSupport

@testable import Sync

/// A ``ContentSource`` held in memory, with scripted faults: link cuts at chosen offsets,
/// corrupt bytes, missing blobs. It drives the real engine, transfer loop and store.
final class InMemorySource: ContentSource, Sendable {
    struct State {
        var tags: [String: Digest] = [:]
        var manifests: [Digest: (mediaType: String, bytes: [UInt8])] = [:]
        var blobs: [Digest: [UInt8]] = [:]
        /// Offsets at which a transfer of the blob breaks (each used once).
        var cuts: [Digest: [Int64]] = [:]
        /// Bytes sent instead of the blob's.
        var corrupt: [Digest: [UInt8]] = [:]
        /// Transfers started per blob, and the offset each started at.
        var starts: [Digest: [Int64]] = [:]
        var blobBytesSent: Int64 = 0
        var manifestFetches = 0
    }

    let name = "memory"
    let state = Mutex(State())
    private let received = Atomic<Int64>(0)

    var bytesReceived: Int64 { received.load(ordering: .relaxed) }

    func manifest(_ repository: RepositoryName, reference: Reference) async throws -> ImagePublisher.ManifestContent {
        let found = state.withLock { s -> (Digest, String, [UInt8])? in
            s.manifestFetches += 1
            let digest: Digest?
            switch reference {
            case .tag(let tag): digest = s.tags["\(repository):\(tag)"]
            case .digest(let given): digest = given
            }
            guard let digest, let manifest = s.manifests[digest] else { return nil }
            return (digest, manifest.mediaType, manifest.bytes)
        }
        guard let (digest, mediaType, bytes) = found else {
            throw SyncError(.notFound, "memory has no manifest \(repository):\(reference)")
        }
        received.wrappingAdd(Int64(bytes.count), ordering: .relaxed)
        return ImagePublisher.ManifestContent(digest: digest, mediaType: mediaType, bytes: bytes, manifest: try Manifest.parse(bytes))
    }

    func manifestDigest(_ repository: RepositoryName, tag: String) async throws -> Digest? {
        state.withLock { $0.tags["\(repository):\(tag)"] }
    }

    func smallBlob(_ repository: RepositoryName, digest: Digest, limit: Int) async throws -> [UInt8] {
        guard let bytes = state.withLock({ $0.blobs[digest] }) else { throw SyncError(.notFound, "no blob \(digest)") }
        return bytes
    }

    func fetchBlob(
        _ digest: Digest, size: Int64, repository: RepositoryName, into ingest: Ingest, progress: @escaping @Sendable (Int64) -> Void
    ) async throws {
        let start = ingest.offset
        let plan = state.withLock { s -> (bytes: [UInt8], cut: Int64?)? in
            guard let real = s.blobs[digest] else { return nil }
            s.starts[digest, default: []].append(start)
            let bytes = s.corrupt[digest] ?? real
            var cut: Int64?
            if var cuts = s.cuts[digest], let index = cuts.firstIndex(where: { $0 >= start }) {
                cut = cuts.remove(at: index)
                s.cuts[digest] = cuts
            }
            return (bytes, cut)
        }
        guard let plan else { throw SyncError(.notFound, "memory has no blob \(digest)") }
        let end = min(Int64(plan.bytes.count), plan.cut ?? Int64(plan.bytes.count))
        var offset = start
        while offset < end {
            // A transfer is interleaved with others: yield between pieces.
            await Task.yield()
            let piece = min(end, offset + 1000)
            guard size < 0 || piece <= size else {
                throw SyncError(.corrupt, "memory sent more than the \(size) bytes announced for \(digest)")
            }
            try ingest.write(Array(plan.bytes[Int(offset)..<Int(piece)]))
            received.wrappingAdd(piece - offset, ordering: .relaxed)
            state.withLock { $0.blobBytesSent += piece - offset }
            offset = piece
            progress(offset)
        }
        if plan.cut != nil { throw SyncError(.link, "memory: link cut at \(end)") }
    }

    // MARK: Building content

    @discardableResult
    func addBlob(_ bytes: [UInt8]) -> Digest {
        let digest = ContentHasher.digest(of: bytes)
        state.withLock { $0.blobs[digest] = bytes }
        return digest
    }

    @discardableResult
    func addManifest(_ json: String, mediaType: String) -> Digest {
        let bytes = Array(json.utf8)
        let digest = ContentHasher.digest(of: bytes)
        state.withLock { $0.manifests[digest] = (mediaType, bytes) }
        return digest
    }

    /// An image of `layers` (their bytes), with a config naming `label`; returns the
    /// manifest digest and the blob digests (config first).
    func image(_ label: String, layers: [[UInt8]]) -> InMemorySourceImage {
        let config = Array(#"{"architecture":"arm64","os":"linux","config":{"Labels":{"l":"\#(label)"}}}"#.utf8)
        let configDigest = addBlob(config)
        let layerDescriptors = layers.map { layer in
            #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(addBlob(layer))","size":\#(layer.count)}"#
        }
        let json = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":[\#(layerDescriptors.joined(separator: ","))]}"#
        let manifest = addManifest(json, mediaType: "application/vnd.oci.image.manifest.v1+json")
        let size = Int64(config.count + layers.reduce(0) { $0 + $1.count } + json.utf8.count)
        return (manifest, [configDigest] + layers.map { ContentHasher.digest(of: $0) }, size)
    }

    func tag(_ key: String, _ digest: Digest) {
        state.withLock { $0.tags[key] = digest }
    }
}

/// An image built by ``InMemorySource/image(_:layers:)``: its manifest, its blobs (config
/// first) and its size.
typealias InMemorySourceImage = (manifest: Digest, blobs: [Digest], size: Int64)

/// A store in a temporary directory and engines over it.
struct EngineFixture {
    let directory: String
    let store: BlobStore
    let source = InMemorySource()

    init(fsyncInterval: Int64 = 4096) throws {
        directory = TestEnvironment.makeTemporaryDirectory("sync-engine")
        store = try BlobStore(
            configuration: .init(
                root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 60_000_000_000,
                fsyncInterval: fsyncInterval))
    }

    func engine(
        // Generous: the suite shares two cores with the end-to-end tests.
        _ images: [String], platform: SyncEngine.Platform? = nil, timeout: Int64 = 600_000_000_000, quota: Int64? = nil,
        gcPolicy: GarbageCollector.Policy = .init()
    ) -> SyncEngine {
        var logger = Logger(label: "sync-engine-test")
        logger.logLevel = .critical
        return SyncEngine(
            configuration: .init(
                source: .images(images.compactMap { ImageReference($0) }), platform: platform, concurrency: 3, timeout: timeout,
                quota: quota, gcPolicy: gcPolicy),
            store: store, content: source, events: nil, logger: logger)
    }

    func remove() { TestEnvironment.removeTree(directory) }

    func ingestFiles() -> [String] { (try? PosixFile.list(store.layout.ingest)) ?? [] }
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}
