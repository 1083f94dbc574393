import Synchronization
import Testing
import TestSupport

@testable import ContentStore
@testable import OCICore

@Suite struct GrowingBlobTests {
    func makeStore(_ directory: String) throws -> BlobStore {
        try BlobStore(
            configuration: .init(
                root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 3_600_000_000_000,
                fsyncInterval: 1 << 20))
    }

    @Test func readersFollowTheIngestAndTheLastByteWaitsForTheDigest() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try makeStore(directory)
        let content = (0..<10_000).map { UInt8($0 % 251) }
        let digest = ContentHasher.digest(of: content)
        let blob = GrowingBlob(digest: digest, size: Int64(content.count), store: store)
        let ingest = try #require(try await store.claimDownload(digest))

        let early = Mutex<[GrowingBlob.Status]>([])
        blob.whenReadable(after: 0) { status in early.withLock { $0.append(status) } }
        #expect(early.withLock { $0.isEmpty })

        try ingest.write(Array(content[0..<4000]))
        blob.advance(to: ingest.offset)
        guard case .available(4000) = early.withLock({ $0.first }) else {
            Issue.record("no wake-up at 4000: \(early.withLock { $0 })")
            return
        }
        // A late reader reads what is on disk.
        let fd = try blob.open()
        defer { PosixFile.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4000)
        let n = try buffer.withUnsafeMutableBytes { try PosixFile.preadFull(fd, $0, at: 0, path: "t") }
        #expect(n == 4000 && buffer == Array(content[0..<4000]))

        try ingest.write(Array(content[4000...]))
        blob.advance(to: ingest.offset)
        // Every byte is written, but the last one stays back until the digest matched.
        #expect(blob.available == Int64(content.count) - 1)
        guard case .available(9999) = await blob.readable(after: 4000) else {
            Issue.record("expected 9999 bytes readable before the commit")
            return
        }
        try ingest.commit(expected: digest)
        blob.finish()
        guard case .complete = await blob.readable(after: 9999) else {
            Issue.record("not complete after finish")
            return
        }
        // The descriptor opened on the ingest file reads the committed blob.
        let m = try buffer.withUnsafeMutableBytes { try PosixFile.preadFull(fd, $0, at: 6000, path: "t") }
        #expect(m == 4000 && buffer == Array(content[6000...]))
        let stored = try blob.open()
        PosixFile.close(stored)
    }

    @Test func aFailureWakesEveryReaderAndTheUnwatchedHandlerRunsOnce() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try makeStore(directory)
        let digest = ContentHasher.digest(of: [1, 2, 3])
        let blob = GrowingBlob(digest: digest, size: 3, store: store)
        let unwatched = Atomic<Int>(0)
        blob.setUnwatchedHandler { unwatched.add(1, ordering: .relaxed) }
        blob.addReader()
        blob.addReader()
        blob.removeReader()
        #expect(unwatched.load(ordering: .relaxed) == 0)
        blob.removeReader()
        #expect(unwatched.load(ordering: .relaxed) == 1)
        async let waiting = blob.readable(after: 0)
        try await Task.sleep(nanoseconds: 10_000_000)
        blob.fail("digest mismatch")
        guard case .failed(let reason) = await waiting else {
            Issue.record("the reader was not told of the failure")
            return
        }
        #expect(reason == "digest mismatch")
        guard case .failed = await blob.readable(after: 2) else {
            Issue.record("a late reader was not told of the failure")
            return
        }
        #expect(throws: PosixError.self) { try blob.open() }
    }
}
