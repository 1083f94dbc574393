import ContentStore
import Fleet
import JSONCoding
import Logging
import OCICore
import Trust

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes a bundle on a connected machine: resolves the desired state on the upstream with
/// the sync's own resolver (same platform selection), then streams one tar: the signed
/// document, the OCI layout files, the manifests, and every blob the target lacks straight
/// from the upstream into its tar entry (each blob read once, its digest checked on the
/// way; memory bounded by the transfer buffer). The file appears under its name only when
/// complete (written as `<name>.partial`, renamed last).
public struct BundleWriter: Sendable {
    /// What the target already holds: its blobs leave the bundle.
    public struct Target: Sendable {
        /// Digests the target holds.
        public var have: Set<String>
        /// The sequence a differential bundle builds on; nil for a full bundle.
        public var base: Int64?

        public init(have: Set<String> = [], base: Int64? = nil) {
            self.have = have
            self.base = base
        }

        public static let full = Target()
    }

    public struct Report: Sendable {
        public var document: BundleDocument
        /// Size of the bundle file.
        public var fileSize: Int64
    }

    let engine: SyncEngine
    let client: UpstreamClient
    let logger: Logger

    /// `engine` resolves the desired state (its store is only read: manifests it already
    /// holds are reused when the upstream still has them); `client` streams the blobs.
    public init(engine: SyncEngine, client: UpstreamClient, logger: Logger) {
        self.engine = engine
        self.client = client
        self.logger = logger
    }

    /// Reads the document of an existing bundle (the `--base` of a differential one).
    ///
    /// Throws ``BundleError``.
    public static func document(of path: String) throws -> BundleDocument {
        let fd: Int32
        do {
            fd = try PosixFile.open(path, O_RDONLY)
        } catch {
            throw BundleError(.storage, "cannot open \(path): \(error)")
        }
        defer { PosixFile.close(fd) }
        do {
            let reader = try TarReader(fd: fd, path: path)
            return try BundleImporter.readDocument(reader, keys: [], allowUnsigned: true).document
        } catch let error as BundleError {
            throw error
        } catch {
            throw BundleError(.malformed, "\(path): \(error)")
        }
    }

    /// Writes the bundle of the engine's desired state to `output`.
    ///
    /// Throws ``BundleError``; on any error no file is left at `output`.
    public func write(
        to output: String, target: Target, group: String, registry: String, sign key: PrivateKey?, sequence: Int64? = nil
    ) async throws -> Report {
        let deadline = MonotonicClock.now() + engine.configuration.timeout
        let wanted: [ImageReference]
        do {
            wanted = try await engine.configuration.source.resolve(content: client)
        } catch {
            throw BundleError(.source, "cannot read the desired state: \(error)")
        }
        guard !wanted.isEmpty else { throw BundleError(.source, "the desired state names no image") }
        var plans: [SyncEngine.ImagePlan] = []
        for image in wanted {
            do {
                plans.append(try await engine.resolve(image, deadline: deadline))
            } catch {
                throw BundleError(.source, "\(image): \(error)")
            }
        }

        // What the state needs, in tar order: manifests first (small), then the blobs.
        var manifests: [(ImagePublisher.ManifestContent, RepositoryName)] = []
        var layers: [(Digest, Int64, RepositoryName)] = []
        var seen = Set<Digest>()
        var images: [BundleDocument.Image] = []
        var artifacts: [GroupArtifact] = []
        for plan in plans {
            for content in [plan.top] + plan.children where seen.insert(content.digest).inserted {
                manifests.append((content, plan.image.repository))
            }
            for (digest, size) in plan.blobs where seen.insert(digest).inserted {
                layers.append((digest, size, plan.image.repository))
            }
            images.append(
                .init(
                    repository: plan.image.repository.value, tag: plan.image.tag ?? "", digest: plan.top.digest.description,
                    mediaType: plan.top.mediaType,
                    children: plan.top.manifest.isIndex ? plan.children.map(\.digest.description) : [], size: plan.bytes))
            artifacts.append(
                GroupArtifact(
                    repository: plan.image.repository.value, tag: plan.image.tag.map { [$0] } ?? [], type: "IMAGE",
                    digest: plan.top.digest.description))
        }
        let required =
            manifests.map { BundleDocument.Blob(digest: $0.0.digest.description, size: Int64($0.0.bytes.count)) }
            + layers.map { BundleDocument.Blob(digest: $0.0.description, size: $0.1) }
        // Manifests always travel (they are small and let the site check the whole state);
        // configs and layers only when the target lacks them.
        let carriedLayers = layers.filter { !target.have.contains($0.0.description) }
        let carried =
            manifests.map { BundleDocument.Blob(digest: $0.0.digest.description, size: Int64($0.0.bytes.count)) }
            + carriedLayers.map { BundleDocument.Blob(digest: $0.0.description, size: $0.1) }
        let now = Int64(time(nil))
        let document = BundleDocument(
            sequence: sequence ?? max(now, (target.base ?? 0) + 1), base: target.base, created: BundleDocument.timestamp(now),
            signer: key?.keyID, state: GroupState(group: group, registry: registry, artifacts: artifacts), images: images,
            blobs: carried, required: required)
        try document.validate()
        let documentBytes = try JSONCoder.encode(document, pretty: true, sortedKeys: true)

        let partial = "\(output).partial"
        let fd: Int32
        do {
            fd = try PosixFile.open(partial, O_WRONLY | O_CREAT | O_TRUNC)
        } catch {
            throw BundleError(.storage, "cannot create \(partial): \(error)")
        }
        var done = false
        defer {
            PosixFile.close(fd)
            if !done { try? PosixFile.unlink(partial) }
        }
        let tar = TarWriter(fd: fd, path: partial)
        do {
            try tar.add(BundleDocument.documentName, documentBytes, mtime: now)
            if let key {
                let signature = try key.sign(documentBytes)
                try tar.add(BundleDocument.signatureName, Array("\(JSONCoding.Base64.encode(signature))\n".utf8), mtime: now)
            }
            try tar.add("oci-layout", Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), mtime: now)
            try tar.add("index.json", try Self.index(plans), mtime: now)
            for (content, _) in manifests {
                try tar.add(BundleDocument.entryName(content.digest), content.bytes, mtime: now)
            }
        } catch let error as BundleError {
            throw error
        } catch {
            throw BundleError(.storage, "cannot write \(partial): \(error)")
        }
        for (digest, size, repository) in carriedLayers {
            try await stream(digest, size: size, repository: repository, into: tar, mtime: now, deadline: deadline)
        }
        do {
            try tar.finish()
            try PosixFile.fsync(fd, path: partial)
            try PosixFile.rename(partial, output)
        } catch {
            throw BundleError(.storage, "cannot finish \(output): \(error)")
        }
        done = true
        logger.info("bundle written", metadata: ["file": "\(output)", "sequence": "\(document.sequence)", "bytes": "\(tar.offset)"])
        return Report(document: document, fileSize: tar.offset)
    }

    /// `index.json`: one entry per image, named `repository:tag` (`repository@digest` for a
    /// pinned one) in `org.opencontainers.image.ref.name`, for `skopeo copy oci-archive:`.
    static func index(_ plans: [SyncEngine.ImagePlan]) throws -> [UInt8] {
        struct Index: Encodable {
            var schemaVersion = 2
            var mediaType = MediaType.ociIndex
            var manifests: [Descriptor]
        }
        let descriptors = plans.map { plan in
            Descriptor(
                mediaType: plan.top.mediaType, digest: plan.top.digest.description, size: Int64(plan.top.bytes.count),
                annotations: ["org.opencontainers.image.ref.name": plan.image.tag.map { "\(plan.image.repository):\($0)" } ?? "\(plan.image)"])
        }
        return try JSONCoder.encode(Index(manifests: descriptors), sortedKeys: true)
    }

    /// One blob from the upstream into its tar entry, hashed as it passes; a broken link
    /// resumes at the entry's offset (Range) until the deadline.
    private func stream(_ digest: Digest, size: Int64, repository: RepositoryName, into tar: TarWriter, mtime: Int64, deadline: Int64)
        async throws
    {
        do {
            try tar.begin(BundleDocument.entryName(digest), size: size, mtime: mtime)
        } catch {
            throw BundleError(.storage, "cannot write \(tar.path): \(error)")
        }
        let sink = TarEntrySink(tar: tar, algorithm: digest.algorithm)
        var attempt = 0
        while true {
            let start = sink.offset
            do {
                try await client.streamBlob(digest, size: size, repository: repository, to: sink, progress: { _ in })
                if sink.offset == size { break }
            } catch let error as SyncError where error.kind == .link {
                if sink.offset > start { attempt = 0 }
                attempt += 1
                guard try await Retry.wait(attempt: attempt, until: deadline) else {
                    throw BundleError(.source, "\(digest): gave up after \(attempt) attempts: \(error)")
                }
                continue
            } catch let error as SyncError {
                throw BundleError(.source, "\(repository)@\(digest): \(error)")
            }
            attempt += 1
            guard try await Retry.wait(attempt: attempt, until: deadline) else {
                throw BundleError(.source, "\(digest): transfer keeps ending early")
            }
        }
        guard sink.digest == digest else {
            throw BundleError(.corrupt, "the upstream sent content for \(digest) that hashes to \(sink.digest)")
        }
        do {
            try tar.end()
        } catch {
            throw BundleError(.storage, "cannot write \(tar.path): \(error)")
        }
    }
}

/// A tar entry as a ``BlobSink``: bytes hashed on their way into the file; a reset rewinds
/// the entry. One transfer drives it at a time (the `stream` loop), hence `@unchecked`.
final class TarEntrySink: BlobSink, @unchecked Sendable {
    private let tar: TarWriter
    private let hasher: ContentHasher

    init(tar: TarWriter, algorithm: Digest.Algorithm) {
        self.tar = tar
        hasher = ContentHasher(algorithm)
    }

    var offset: Int64 { tar.entryOffset }
    var digest: Digest { hasher.digest() }

    func reset() throws {
        try tar.rewindEntry()
        hasher.reset()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try tar.write(bytes)
        hasher.update(bytes)
    }
}
