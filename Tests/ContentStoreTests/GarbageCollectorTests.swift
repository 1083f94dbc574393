import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@testable import ContentStore
@testable import OCICore

@Suite struct GarbageCollectorTests {
    struct Fixture {
        let directory = TestEnvironment.makeTemporaryDirectory("gc-test")
        let store: BlobStore
        let repository = RepositoryName("edge/app")!

        init() throws {
            store = try BlobStore(
                configuration: .init(
                    root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 3_600_000_000_000,
                    fsyncInterval: 1 << 20))
        }

        /// Stores an image (config + one layer of `size` bytes) and returns its manifest digest.
        func image(_ name: String, size: Int, tag: String?) throws -> (manifest: Digest, layer: Digest) {
            let config = try store.putBlob(Array("{\"name\":\"\(name)\"}".utf8))
            let layer = try store.putBlob([UInt8](repeating: UInt8(name.utf8.first ?? 0), count: size))
            try store.linkBlob(config, into: repository)
            try store.linkBlob(layer, into: repository)
            let manifest = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
                "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":1},\
                "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(layer)","size":\(size)}]}
                """
            let digest = try store.putBlob(Array(manifest.utf8))
            try store.linkManifest(digest, mediaType: MediaType.ociManifest, into: repository)
            if let tag { try store.setTag(repository, tag, to: digest) }
            return (digest, layer)
        }
    }

    @Test func tagsAreKeptAndTheRestGoesLeastRecentlyUsedFirst() throws {
        let f = try Fixture()
        defer { TestEnvironment.removeTree(f.directory) }
        let kept = try f.image("a", size: 10_000, tag: "v1")
        let old = try f.image("b", size: 20_000, tag: nil)
        let recent = try f.image("c", size: 30_000, tag: nil)
        // "b" was used long ago, "c" just now: b goes first.
        try age(f, old.manifest, by: 3_000)
        f.store.access.touch(recent.layer)
        f.store.access.touch(recent.manifest)
        let policy = GarbageCollector.Policy(keepPushedTags: true, gracePeriod: 0)
        let plan = try GarbageCollector.plan(store: f.store, policy: policy, roots: .init())
        #expect(plan.live.contains(kept.manifest))
        #expect(plan.live.contains(kept.layer))
        #expect(!plan.candidates.contains { $0.digest == kept.layer })
        let order = plan.candidates.map(\.digest)
        let oldIndex = try #require(order.firstIndex(of: old.layer))
        let recentIndex = try #require(order.firstIndex(of: recent.layer))
        #expect(oldIndex < recentIndex)

        // Freeing 20 KB takes b's layer (and whatever is older) but not c's.
        let sweep = GarbageCollector.sweep(store: f.store, plan: plan, freeing: 20_000)
        #expect(!f.store.hasBlob(old.layer))
        #expect(f.store.hasBlob(recent.layer))
        #expect(f.store.hasBlob(kept.layer))
        #expect(sweep.freedBytes >= 20_000)
        #expect(f.store.resolveTag(f.repository, "v1") == kept.manifest)
    }

    /// Makes every blob of an image look last used (written, in the access log and by its
    /// file time) `age` seconds ago.
    func age(_ f: Fixture, _ manifest: Digest, by age: Int) throws {
        let then = time(nil) - age
        for digest in Verifier.closure(store: f.store, manifest) {
            var times = [timespec(tv_sec: then, tv_nsec: 0), timespec(tv_sec: then, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, f.store.blobPath(digest), &times, 0) == 0)
            f.store.access.touch(digest, at: Int64(then))
        }
    }

    /// A sweep that frees a few bytes still takes whole images: no manifest is left listed
    /// without its layers, and no layer of an evicted image stays as dead weight; a layer
    /// that an intact cached image shares stays.
    @Test func partialSweepsEvictWholeImages() throws {
        let f = try Fixture()
        defer { TestEnvironment.removeTree(f.directory) }
        let oldest = try f.image("b", size: 4_000, tag: nil)
        let sharing = try f.image("bb", size: 4_000, tag: nil)  // same layer bytes as "b"
        let newest = try f.image("d", size: 8_000, tag: nil)
        #expect(oldest.layer == sharing.layer)
        try age(f, oldest.manifest, by: 3_000)
        try age(f, sharing.manifest, by: 2_000)
        try age(f, newest.manifest, by: 1_000)
        let plan = try GarbageCollector.plan(store: f.store, policy: .init(keepPushedTags: true, gracePeriod: 0), roots: .init())
        #expect(plan.images[oldest.manifest]?.contains(oldest.layer) == true)

        let first = GarbageCollector.sweep(store: f.store, plan: plan, freeing: 1)
        let oldestParts = Verifier.closure(store: f.store, sharing.manifest)
        #expect(!f.store.hasBlob(oldest.manifest), "the oldest image goes first")
        #expect(f.store.manifestMediaType(f.repository, oldest.manifest) == nil, "and is no longer listed")
        #expect(f.store.hasBlob(oldest.layer), "its layer stays: the intact image \"bb\" needs it")
        #expect(oldestParts.allSatisfy { f.store.hasBlob($0) }, "\"bb\" is whole")
        #expect(Verifier.closure(store: f.store, newest.manifest).allSatisfy { f.store.hasBlob($0) }, "\"d\" is whole")
        #expect(first.removed.count == 2, "the manifest and config of \"b\": \(first.removed.map(\.digest))")

        // The next partial sweep takes "bb" whole, shared layer included, and leaves "d".
        let plan2 = try GarbageCollector.plan(store: f.store, policy: .init(keepPushedTags: true, gracePeriod: 0), roots: .init())
        GarbageCollector.sweep(store: f.store, plan: plan2, freeing: 1)
        #expect(oldestParts.allSatisfy { !f.store.hasBlob($0) }, "\"bb\" went whole")
        #expect(Verifier.closure(store: f.store, newest.manifest).allSatisfy { f.store.hasBlob($0) }, "\"d\" is whole")
    }

    @Test func gracePeriodProtectsFreshContent() throws {
        let f = try Fixture()
        defer { TestEnvironment.removeTree(f.directory) }
        _ = try f.image("b", size: 5_000, tag: nil)
        let plan = try GarbageCollector.plan(store: f.store, policy: .init(keepPushedTags: true, gracePeriod: 3600), roots: .init())
        #expect(plan.candidates.isEmpty)
        #expect(plan.youngBytes > 5_000)
    }

    @Test func withoutKeepingPushedTagsOnlyRootsStay() throws {
        let f = try Fixture()
        defer { TestEnvironment.removeTree(f.directory) }
        let desired = try f.image("a", size: 1_000, tag: "wanted")
        let pushed = try f.image("b", size: 1_000, tag: "pushed")
        let policy = GarbageCollector.Policy(keepPushedTags: false, gracePeriod: 0)
        let plan = try GarbageCollector.plan(store: f.store, policy: policy, roots: .init(tags: ["edge/app:wanted"]))
        #expect(plan.live.contains(desired.layer))
        #expect(!plan.live.contains(pushed.layer))
        GarbageCollector.sweep(store: f.store, plan: plan)
        #expect(f.store.hasBlob(desired.layer))
        #expect(!f.store.hasBlob(pushed.layer))
        // The manifest link went with its blob: the registry no longer lists it.
        #expect(f.store.manifestMediaType(f.repository, pushed.manifest) == nil)
    }

    @Test func verifyQuarantinesCorruptBlobs() throws {
        let f = try Fixture()
        defer { TestEnvironment.removeTree(f.directory) }
        let image = try f.image("a", size: 50_000, tag: "v1")
        #expect(try Verifier.verify(store: f.store).corrupt.isEmpty)
        // Flip a byte in the middle of the layer, as bit rot would.
        let path = f.store.blobPath(image.layer)
        _ = try Subprocess.run(["sh", "-c", "printf 'Z' | dd of=\(path) bs=1 seek=25000 conv=notrunc status=none"])
        let report = try Verifier.verify(store: f.store)
        #expect(report.corrupt == [image.layer])
        #expect(report.brokenImages == ["edge/app:v1"])
        #expect(!f.store.hasBlob(image.layer))
        #expect(PosixFile.exists("\(f.store.root)/quarantine/sha256-\(image.layer.hex)"))
        #expect(try Verifier.verify(store: f.store).corrupt.isEmpty)
    }
}
