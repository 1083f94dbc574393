import ContentStore
import JSONCoding
import Logging
import OCICore
import Trust

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Imports a bundle in one streaming pass over its tar: the signed document first (checked
/// against `bundles.keys` before a single blob is read), then each blob straight into the
/// store's ingest (claimed like any download: one writer per digest across processes,
/// resumable, verified at commit), and only when every blob the state needs is present and
/// verified, the images through the one publish step (trust policy, managed tags, hooks).
/// A refused bundle leaves nothing visible: blobs committed on the way are unreferenced
/// content (kept for a resumed import, collected by GC), tags never moved.
public struct BundleImporter: Sendable {
    public struct Configuration: Sendable {
        /// Keys a bundle's signature must verify with (`bundles.keys`).
        public var keys: [PublicKey]
        /// Accept bundles without a signature (`bundles.unsigned`).
        public var allowUnsigned: Bool
        public var quota: QuotaPolicy
        public var bufferSize: Int

        public init(keys: [PublicKey], allowUnsigned: Bool, quota: QuotaPolicy, bufferSize: Int) {
            self.keys = keys
            self.allowUnsigned = allowUnsigned
            self.quota = quota
            self.bufferSize = bufferSize
        }
    }

    /// What an import did.
    public struct Report: Sendable {
        public var sequence: Int64 = 0
        public var base: Int64?
        public var signer: String?
        /// The bundle was the one applied last: nothing to do.
        public var alreadyApplied = false
        public var images: [String] = []
        public var updated: [String] = []
        public var removed: [String] = []
        public var failures: [(image: String, error: String)] = []
        /// Blobs written into the store by this run, and their bytes.
        public var blobsWritten = 0
        public var bytesWritten: Int64 = 0
        /// Blobs the store already held (skipped in the tar, not written).
        public var blobsSkipped = 0
        /// Blobs that continued a partial file an interrupted import left.
        public var blobsResumed = 0

        public var complete: Bool { failures.isEmpty }
    }

    public let configuration: Configuration
    public let store: BlobStore
    public let publisher: ImagePublisher
    private let logger: Logger

    public init(
        configuration: Configuration, store: BlobStore, events: (any SyncEventSink)?, policy: any PublishPolicy = AcceptAllPolicy(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.store = store
        self.publisher = ImagePublisher(store: store, policy: policy, events: events, logger: logger)
        self.logger = logger
    }

    /// The leading entries of a bundle, read and checked.
    public struct DocumentRead: Sendable {
        public var document: BundleDocument
        /// The key of `keys` that verified the signature.
        public var signer: PublicKey?
        /// Whether the bundle carries a signature at all.
        public var signed: Bool
        /// The entry after the document and its signature.
        public var next: TarReader.Entry?
    }

    /// Reads and checks the leading document and signature of the bundle at `reader`.
    ///
    /// Throws ``BundleError`` (`malformed`, `signature`).
    public static func readDocument(_ reader: TarReader, keys: [PublicKey], allowUnsigned: Bool) throws -> DocumentRead {
        let first: TarReader.Entry?
        do {
            first = try reader.next()
        } catch let error as TarReader.Error {
            throw BundleError(.malformed, "\(reader.path): \(error)")
        }
        guard let first, first.name == BundleDocument.documentName, !first.isDirectory else {
            throw BundleError(.malformed, "\(reader.path) is not a satellite-lite bundle: its first entry is not \(BundleDocument.documentName)")
        }
        let bytes: [UInt8]
        var signature: [UInt8]?
        var next: TarReader.Entry?
        do {
            bytes = try reader.readAll(limit: 64 << 20)
            next = try reader.next()
            if let entry = next, entry.name == BundleDocument.signatureName {
                let text = String(decoding: try reader.readAll(limit: 4096), as: UTF8.self).trimmed()
                guard let der = JSONCoding.Base64.decode(text), !der.isEmpty else {
                    throw BundleError(.signature, "\(reader.path): \(BundleDocument.signatureName) is not a base64 signature")
                }
                signature = der
                next = try reader.next()
            }
        } catch let error as TarReader.Error {
            throw BundleError(.malformed, "\(reader.path): \(error)")
        }
        var signer: PublicKey?
        if let signature {
            signer = keys.first { $0.verifies(signature, over: bytes) }
            if signer == nil, !(keys.isEmpty && allowUnsigned) {
                throw BundleError(
                    .signature,
                    keys.isEmpty
                        ? "\(reader.path) is signed but bundles.keys names no key to check it (add the signer's public key)"
                        : "\(reader.path): the signature of bundle.json does not verify with any of bundles.keys (\(keys.map(\.name).joined(separator: ", ")))")
            }
        } else if !allowUnsigned {
            throw BundleError(.signature, "\(reader.path) is not signed; set \"bundles\": {\"unsigned\": true} to accept unsigned bundles")
        }
        let document: BundleDocument
        do {
            document = try JSONCoder.decode(BundleDocument.self, from: bytes)
        } catch {
            throw BundleError(.malformed, "\(reader.path): bundle.json: \(error)")
        }
        try document.validate()
        return DocumentRead(document: document, signer: signer, signed: signature != nil, next: next)
    }

    /// Imports the bundle at `path`, holding the store's writer lock (a sync pass of `run`
    /// waits for it, and it for the pass).
    ///
    /// Throws ``BundleError``; whatever it throws, no tag has moved.
    public func importBundle(at path: String) async throws -> Report {
        let lock: StoreLock
        do {
            lock = try await StoreLock.acquire(store: store, logger: logger)
        } catch {
            throw BundleError(.storage, "cannot take the store's writer lock: \(error)")
        }
        defer { lock.release() }
        try? publisher.recoverEvents()
        let fd: Int32
        do {
            fd = try PosixFile.open(path, O_RDONLY)
        } catch {
            throw BundleError(.storage, "cannot open \(path): \(error)")
        }
        defer { PosixFile.close(fd) }
        let reader: TarReader
        do {
            reader = try TarReader(fd: fd, path: path)
        } catch {
            throw BundleError(.storage, "cannot read \(path): \(error)")
        }
        let read = try Self.readDocument(reader, keys: configuration.keys, allowUnsigned: configuration.allowUnsigned)
        let (document, signer, firstBlobEntry) = (read.document, read.signer, read.next)
        var report = Report()
        report.sequence = document.sequence
        report.base = document.base
        report.signer = signer?.keyID ?? document.signer
        report.images = document.images.map(\.reference)

        // The sequence chain.
        let applied = BundleRecord.read(store: store)
        let last = applied?.sequence ?? 0
        if let applied, document.sequence == applied.sequence {
            report.alreadyApplied = true
            return report
        }
        if document.sequence < last {
            throw BundleError(
                .sequence, "bundle \(document.sequence) is older than bundle \(last), the last one applied here: refused (no rollback)")
        }
        if let base = document.base, base != last {
            throw BundleError(
                .sequence,
                "bundle \(document.sequence) is differential on bundle \(base), but the last bundle applied here is "
                    + (applied == nil ? "none (import a full bundle, or one made with --have from this site)" : "\(last)"))
        }

        // Room, up front, with sizes.
        try makeRoom(document)

        // The blobs, in one pass.
        try await ingestBlobs(document, reader: reader, first: firstBlobEntry, report: &report)
        let missing = document.required.filter { blob in Digest(blob.digest).map { !store.hasBlob($0) } ?? true }
        if !missing.isEmpty {
            let bytes = missing.reduce(Int64(0)) { $0 + $1.size }
            throw BundleError(
                .sequence,
                "bundle \(document.sequence) lacks \(missing.count) blob(s) (\(ByteSize.format(bytes))) this store does not hold "
                    + "(first \(missing[0].digest)): it was made for a site holding other content")
        }

        // Publish, image by image, through the one publish step.
        let wantedTags = Set(document.images.filter { !$0.tag.isEmpty }.map { "\($0.repository):\($0.tag)" })
        for image in document.images {
            do {
                let outcome = try publish(image)
                if outcome.updated { report.updated.append(image.reference) }
            } catch {
                logger.error("bundle image refused", metadata: ["image": "\(image.reference)", "error": "\(error)"])
                report.failures.append((image.reference, "\(error)"))
            }
        }
        guard report.failures.isEmpty else { return report }
        // The bundle is the whole desired state: the agent's tags it does not name go.
        for key in ManagedTags.read(store: store).tags.keys.sorted() where !wantedTags.contains(key) {
            do {
                try publisher.unpublish(managedTag: key)
                report.removed.append(key)
            } catch {
                report.failures.append((key, "cannot remove: \(error)"))
            }
        }
        let record = BundleRecord(
            sequence: document.sequence, base: document.base, created: document.created, signer: report.signer,
            appliedAt: Int64(time(nil)), file: path, images: report.images)
        do {
            try record.write(store: store)
        } catch {
            throw BundleError(.storage, "bundle \(document.sequence) applied, but its record could not be written: \(error)")
        }
        try? publisher.events?.record(
            SyncEvent(
                kind: .bundleImported,
                message: "bundle \(document.sequence)\(document.base.map { " (on \($0))" } ?? "") from \(path): "
                    + "\(document.images.count) image(s), \(report.updated.count) updated"))
        logger.info(
            "bundle imported",
            metadata: [
                "sequence": "\(document.sequence)", "file": "\(path)", "images": "\(document.images.count)",
                "written": "\(report.bytesWritten)",
            ])
        return report
    }

    private func makeRoom(_ document: BundleDocument) throws {
        var sizes: [Digest: Int64] = [:]
        for blob in document.required { if let digest = Digest(blob.digest) { sizes[digest] = blob.size } }
        if let quota = configuration.quota.quota, document.requiredBytes > quota {
            let list = document.images.map { "\($0.reference) (\(ByteSize.format($0.size)))" }.joined(separator: ", ")
            throw BundleError(
                .quota,
                "bundle \(document.sequence) needs \(ByteSize.format(document.requiredBytes)) but the quota is \(ByteSize.format(quota)): \(list)")
        }
        let wantedTags = Set(document.images.filter { !$0.tag.isEmpty }.map { "\($0.repository):\($0.tag)" })
        let managed = ManagedTags.read(store: store)
        let roots = GarbageCollector.Roots(
            tags: wantedTags,
            digests: document.images.compactMap { image in
                guard let repository = RepositoryName(image.repository), let digest = Digest(image.digest) else { return nil }
                return (repository, digest)
            },
            released: Set(managed.tags.keys).subtracting(wantedTags), blobs: Set(sizes.keys))
        do {
            _ = try configuration.quota.makeRoom(store: store, for: sizes, roots: roots, logger: logger)
        } catch let error as QuotaPolicy.Error {
            throw BundleError(.quota, "bundle \(document.sequence): \(error.description)")
        }
    }

    /// Reads every entry after the document: the OCI layout files, and each blob into the
    /// store (skipped when stored; continued when a partial file is there).
    private func ingestBlobs(_ document: BundleDocument, reader: TarReader, first: TarReader.Entry?, report: inout Report) async throws {
        var carried: [String: Int64] = [:]
        for blob in document.blobs { carried[blob.digest] = blob.size }
        var seen = Set<String>()
        var buffer = [UInt8](repeating: 0, count: max(4096, configuration.bufferSize))
        var entry = first
        while let current = entry {
            if Task.isCancelled { throw BundleError(.storage, "cancelled") }
            guard seen.insert(current.name).inserted else {
                throw BundleError(.malformed, "\(reader.path): entry \(current.name) appears twice")
            }
            if current.isDirectory {
                guard ["blobs", "blobs/sha256"].contains(current.name) else {
                    throw BundleError(.malformed, "\(reader.path): unexpected directory \(current.name)")
                }
            } else if current.name == "oci-layout" || current.name == "index.json" {
                // Read for other tools (skopeo, ctr); the signed document is what counts here.
                guard current.size <= 16 << 20 else {
                    throw BundleError(.malformed, "\(reader.path): \(current.name) of \(current.size) bytes")
                }
            } else if current.name.hasPrefix("blobs/sha256/"), let digest = Digest("sha256:\(current.name.dropFirst(13))") {
                guard let size = carried[digest.description] else {
                    throw BundleError(.malformed, "\(reader.path): \(current.name) is not listed in the signed bundle.json")
                }
                guard size == current.size else {
                    throw BundleError(.corrupt, "\(reader.path): \(current.name) has \(current.size) bytes, bundle.json says \(size)")
                }
                try await ingest(digest, size: size, reader: reader, buffer: &buffer, report: &report)
            } else {
                throw BundleError(.malformed, "\(reader.path): unexpected entry \(current.name)")
            }
            do {
                entry = try reader.next()
            } catch let error as TarReader.Error {
                throw BundleError(.malformed, "\(reader.path): \(error)")
            }
        }
        let absent = document.blobs.filter { !seen.contains("blobs/sha256/\($0.digest.dropFirst(7))") }
        if !absent.isEmpty {
            throw BundleError(.malformed, "\(reader.path): \(absent.count) blob(s) listed in bundle.json are not in the tar (first \(absent[0].digest))")
        }
    }

    private func ingest(_ digest: Digest, size: Int64, reader: TarReader, buffer: inout [UInt8], report: inout Report) async throws {
        if store.hasBlob(digest) {
            report.blobsSkipped += 1
            return
        }
        let claimed: Ingest?
        do {
            claimed = try await store.claimDownload(digest)
        } catch {
            throw BundleError(.storage, "cannot open an ingest file for \(digest): \(error)")
        }
        guard let ingest = claimed else {
            report.blobsSkipped += 1
            return
        }
        var finished = false
        defer { if !finished { try? ingest.suspend() } }
        if ingest.offset > size { try? ingest.reset() }
        if ingest.offset > 0 { report.blobsResumed += 1 }
        // What an interrupted import already wrote stays; the digest at commit covers it.
        reader.skip(ingest.offset)
        let start = ingest.offset
        while reader.remaining > 0 {
            let n: Int
            do {
                n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            } catch let error as TarReader.Error {
                throw BundleError(.malformed, "\(reader.path): \(error)")
            } catch {
                throw BundleError(.storage, "cannot read \(reader.path): \(error)")
            }
            do {
                try buffer.withUnsafeBytes { try ingest.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            } catch {
                throw BundleError(.storage, "cannot write \(digest): \(error)")
            }
        }
        finished = true
        do {
            try ingest.commit(expected: digest)
        } catch let error as BlobStore.Error {
            throw BundleError(.corrupt, "\(reader.path): blob \(digest) is damaged: \(error)")
        } catch {
            throw BundleError(.storage, "cannot store \(digest): \(error)")
        }
        report.blobsWritten += 1
        report.bytesWritten += size - start
    }

    /// One image through the publish step: its manifests from the store (they came in the
    /// bundle or were here), the blobs they need, the tag last.
    private func publish(_ image: BundleDocument.Image) throws -> ImagePublisher.Outcome {
        guard let repository = RepositoryName(image.repository), let digest = Digest(image.digest) else {
            throw BundleError(.malformed, "invalid image \(image.reference)")
        }
        func manifest(_ digest: Digest, mediaType: String) throws -> ImagePublisher.ManifestContent {
            let bytes = try store.readBlob(digest, limit: Manifest.maxSize)
            guard ContentHasher.digest(of: bytes, algorithm: digest.algorithm) == digest else {
                throw BundleError(.corrupt, "stored manifest \(digest) does not match its digest (run verify)")
            }
            let parsed = try Manifest.parse(bytes)
            return .init(digest: digest, mediaType: parsed.effectiveMediaType(contentType: mediaType), bytes: bytes, manifest: parsed)
        }
        let top = try manifest(digest, mediaType: image.mediaType)
        var children: [ImagePublisher.ManifestContent] = []
        if top.manifest.isIndex {
            for text in image.children {
                guard let child = Digest(text) else { continue }
                let mediaType = top.manifest.manifests?.first { $0.digest == text }?.mediaType ?? MediaType.ociManifest
                children.append(try manifest(child, mediaType: mediaType))
            }
        } else {
            children = [top]
        }
        var blobs: [Digest] = []
        for child in children {
            for descriptor in [child.manifest.config].compactMap({ $0 }) + (child.manifest.layers ?? []) {
                if MediaType.isNonDistributable(descriptor.mediaType) || !(descriptor.urls ?? []).isEmpty { continue }
                guard let blob = Digest(descriptor.digest), store.hasBlob(blob) else {
                    throw BundleError(.corrupt, "\(image.reference): blob \(descriptor.digest) is missing")
                }
                blobs.append(blob)
            }
        }
        return try publisher.publish(
            ImagePublisher.Image(
                repository: repository, tags: image.tag.isEmpty ? [] : [image.tag], top: top, children: children, blobs: blobs,
                origin: .sync))
    }
}
