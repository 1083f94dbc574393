import Testing
import TestSupport

@testable import ContentStore
@testable import OCICore

@Suite struct BlobStoreTests {
    func makeStore(_ directory: String, fsyncInterval: Int64 = 1 << 20) throws -> BlobStore {
        try BlobStore(
            configuration: .init(
                root: "\(directory)/store", fsyncOnCommit: true, bufferSize: 4096, uploadTimeout: 3_600_000_000_000,
                fsyncInterval: fsyncInterval))
    }

    func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    @Test func downloadResumesFromTheDurableOffset() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try makeStore(directory, fsyncInterval: 10_000)
        let content = randomBytes(50_000)
        let digest = ContentHasher.digest(of: content)

        let first = try store.openDownload(digest)
        for start in stride(from: 0, to: 25_000, by: 1000) {
            try first.write(Array(content[start..<start + 1000]))
        }
        // Checkpoints happen every 10,000 bytes: 20,000 are durable, 5,000 are not.
        #expect(first.durableOffset == 20_000)
        #expect(!store.hasBlob(digest))
        // The process dies here (no suspend). In the same boot the page cache kept all 25,000
        // bytes; after a power cut only the 20,000 fsync'ed ones count. Simulate the reboot.
        #expect(store.partialDownloadSize(digest) == 25_000)
        let sidecar = "\(store.root)/ingest/sha256-\(digest.hex).offset"
        TestEnvironment.write(sidecar, "20000 00000000-0000-0000-0000-000000000000")
        #expect(store.partialDownloadSize(digest) == 20_000)
        let second = try store.openDownload(digest)
        #expect(second.offset == 20_000)
        try second.write(Array(content[20_000...]))
        try second.commit(expected: digest)
        #expect(store.hasBlob(digest))
        #expect(try store.readBlob(digest, limit: 1 << 20) == content)
        #expect(try PosixFile.list("\(store.root)/ingest").isEmpty)
    }

    @Test func aCrashedProcessResumesFromEveryByteItWrote() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try makeStore(directory, fsyncInterval: 1 << 30)
        let content = randomBytes(30_000)
        let digest = ContentHasher.digest(of: content)
        let first = try store.openDownload(digest)
        try first.write(Array(content[0..<12_345]))
        #expect(first.durableOffset == 0, "no checkpoint yet")
        // Killed before any checkpoint: the same boot trusts the whole file.
        let second = try store.openDownload(digest)
        #expect(second.offset == 12_345)
        try second.write(Array(content[12_345...]))
        try second.commit(expected: digest)
        #expect(try store.readBlob(digest, limit: 1 << 20) == content)
    }

    @Test func mismatchLeavesNothingVisible() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try makeStore(directory)
        let content = randomBytes(10_000)
        let claimed = ContentHasher.digest(of: Array("something else".utf8))
        let ingest = try store.openDownload(claimed)
        try ingest.write(content)
        #expect(throws: BlobStore.Error.self) { try ingest.commit(expected: claimed) }
        #expect(!store.hasBlob(claimed))
        #expect(!store.hasBlob(ContentHasher.digest(of: content)))
        #expect(try PosixFile.list("\(store.root)/ingest").isEmpty)
        #expect(try store.allBlobs().isEmpty)
    }

    @Test func uploadSessionsSurviveARestart() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let name = try #require(RepositoryName("edge/app"))
        let content = randomBytes(30_000)
        let digest = ContentHasher.digest(of: content)
        let id: String
        do {
            let store = try makeStore(directory)
            let session = try store.startUpload(in: name)
            try content[0..<12_345].withUnsafeBytes { try session.append($0) }
            id = session.id
            store.releaseUpload(session)
        }
        // A new process: the session is found on disk and its prefix re-hashed.
        let store = try makeStore(directory)
        store.recover()
        guard case .found(let session) = store.acquireUpload(id, repository: name) else {
            Issue.record("session lost across restart")
            return
        }
        #expect(session.offset == 12_345)
        guard case .busy = store.acquireUpload(id, repository: name) else {
            Issue.record("a busy session was handed out twice")
            return
        }
        try content[12_345...].withUnsafeBytes { try session.append($0) }
        try store.finishUpload(session, digest: digest)
        #expect(store.repositoryHasBlob(name, digest))
        guard case .unknown = store.acquireUpload(id, repository: name) else {
            Issue.record("finished session still known")
            return
        }
    }

    @Test func abandonedUploadsArePurged() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try BlobStore(
            configuration: .init(root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 0, fsyncInterval: 1 << 20))
        let name = try #require(RepositoryName("a"))
        let session = try store.startUpload(in: name)
        store.releaseUpload(session)
        TestEnvironment.sleep(1.1)
        #expect(store.purgeAbandonedUploads() == 1)
        #expect(try PosixFile.list("\(store.root)/uploads").isEmpty)
    }

    @Test func tagsAndLinks() throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try makeStore(directory)
        let name = try #require(RepositoryName("lib/app"))
        let digest = try store.putBlob(Array(#"{"schemaVersion":2}"#.utf8))
        try store.linkManifest(digest, mediaType: MediaType.ociManifest, into: name)
        try store.setTag(name, "v1", to: digest)
        #expect(store.resolveTag(name, "v1") == digest)
        #expect(store.manifestMediaType(name, digest) == MediaType.ociManifest)
        #expect(try store.repositories() == [name])
        #expect(try store.tags(name) == ["v1"])
        #expect(try store.deleteTag(name, "v1"))
        #expect(store.resolveTag(name, "v1") == nil)
        // Atomic writes leave no temp files behind.
        let leftovers = try Subprocess.run(["sh", "-c", "find \(store.root) -name '.tmp-*' | wc -l"])
        #expect(leftovers.output.trimmed() == "0")
    }
}

@Suite struct IngestClaimTests {
    func makeStore(_ directory: String) throws -> BlobStore {
        try BlobStore(
            configuration: .init(
                root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 60_000_000_000, fsyncInterval: 4096))
    }

    /// Two stores over one directory play two processes: the second writer waits for the
    /// first's file lock, then finds the blob committed.
    @Test func aSecondProcessWaitsForTheFileLockThenFindsTheBlob() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let first = try makeStore(directory)
        let second = try makeStore(directory)
        let content = Array(repeating: UInt8(7), count: 30_000)
        let digest = ContentHasher.digest(of: content)
        let ingest = try #require(try await first.claimDownload(digest))
        try ingest.write(Array(content[0..<10_000]))
        let waiter = Task { try await second.claimDownload(digest) }
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(ingest.offset == 10_000, "nobody else wrote into it")
        try ingest.write(Array(content[10_000...]))
        try ingest.commit(expected: digest)
        let found = try await waiter.value
        #expect(found == nil, "the blob was stored meanwhile")
        #expect(try first.readBlob(digest, limit: 1 << 20) == content)
    }

    /// A writer that gives up (suspends) hands the partial file to the next one, which
    /// continues from its offset.
    @Test func theNextWriterContinuesASuspendedDownload() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try makeStore(directory)
        let content = Array(repeating: UInt8(9), count: 20_000)
        let digest = ContentHasher.digest(of: content)
        let ingest = try #require(try await store.claimDownload(digest))
        try ingest.write(Array(content[0..<12_000]))
        let waiter = Task { try await store.claimDownload(digest) }
        try await Task.sleep(nanoseconds: 100_000_000)
        try ingest.suspend()
        let next = try #require(try await waiter.value)
        #expect(next.offset == 12_000)
        try next.write(Array(content[12_000...]))
        try next.commit(expected: digest)
        #expect(store.hasBlob(digest))
    }
}
