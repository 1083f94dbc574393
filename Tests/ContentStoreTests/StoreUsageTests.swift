import Testing
import TestSupport

@testable import ContentStore
@testable import OCICore

/// The running usage figure: one walk, then commits and removals move it without walking;
/// a change by another process (another BlobStore on the same folder) makes the next check
/// walk again; the figure always equals a fresh walk.
@Suite struct StoreUsageTests {
    static func open(_ root: String) throws -> BlobStore {
        try BlobStore(
            configuration: .init(root: root, fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 3_600_000_000_000, fsyncInterval: 1 << 20))
    }

    @Test func commitsAndRemovalsMoveTheFigureWithoutWalking() throws {
        let directory = TestEnvironment.makeTemporaryDirectory("usage-test")
        defer { TestEnvironment.removeTree(directory) }
        let store = try Self.open("\(directory)/store")
        var expected: Int64 = 0
        for index in 0..<50 {
            let bytes = [UInt8](repeating: UInt8(index), count: 100 + index)
            try store.putBlob(bytes)
            expected += Int64(bytes.count)
        }
        #expect(store.usage.blobBytes() == expected)
        #expect(store.usage.walks == 1)
        // Commits and removals by this process: no walk, figure exact.
        let added = try store.putBlob([UInt8](repeating: 0xAB, count: 4096))
        #expect(store.usage.blobBytes() == expected + 4096)
        try store.putBlob([UInt8](repeating: 0xAB, count: 4096))  // already there: no change
        #expect(store.usage.blobBytes() == expected + 4096)
        try store.removeBlob(added)
        for _ in 0..<100 { #expect(store.usage.blobBytes() == expected) }
        #expect(store.usage.walks == 1)
        // Downloads in progress count too, listed beside the figure.
        let partial = "\(store.layout.ingest)/sha256-\(String(repeating: "a", count: 64))"
        TestEnvironment.write(partial, String(repeating: "x", count: 1000))
        #expect(GarbageCollector.diskUse(store: store) == expected + 1000)
        #expect(store.usage.walks == 1)
        #expect(GarbageCollector.diskUse(store: store, exact: true) == expected + 1000)
        #expect(store.usage.walks == 2)
    }

    @Test func anotherProcessesChangeMakesTheNextCheckWalk() throws {
        let directory = TestEnvironment.makeTemporaryDirectory("usage-test")
        defer { TestEnvironment.removeTree(directory) }
        let run = try Self.open("\(directory)/store")
        let other = try Self.open("\(directory)/store")  // a `sync` or `gc` process beside `run`
        let first = try run.putBlob([UInt8](repeating: 1, count: 300))
        #expect(run.usage.blobBytes() == 300)
        let walks = run.usage.walks
        // The other process commits: `run`'s next check sees the counter moved and walks.
        let second = try other.putBlob([UInt8](repeating: 2, count: 700))
        #expect(run.usage.blobBytes() == 1000)
        #expect(run.usage.walks == walks + 1)
        #expect(run.usage.blobBytes() == 1000)
        #expect(run.usage.walks == walks + 1)
        // The other process evicts while `run` also commits: `run`'s own change is not
        // taken for the only one.
        try other.removeBlob(first)
        try run.putBlob([UInt8](repeating: 3, count: 50))
        #expect(run.usage.blobBytes() == 750)
        try other.removeBlob(second)
        #expect(run.usage.blobBytes() == 50)
        #expect(other.usage.blobBytes() == 50)
    }

    @Test func aStaleFigureIsWalkedAgainAfterItsMaximumAge() throws {
        let directory = TestEnvironment.makeTemporaryDirectory("usage-test")
        defer { TestEnvironment.removeTree(directory) }
        let store = try Self.open("\(directory)/store")
        let usage = StoreUsage(layout: store.layout, maximumAge: 0)
        let digest = try store.putBlob([UInt8](repeating: 9, count: 123))
        #expect(usage.blobBytes() == 123)
        // Removed behind the store's back (no counter): only the age catches it.
        try PosixFile.unlink(store.blobPath(digest))
        #expect(usage.blobBytes() == 0)
        #expect(usage.walks == 2)
    }

    @Test func makeRoomEvictsOnAnExactFigure() throws {
        let directory = TestEnvironment.makeTemporaryDirectory("usage-test")
        defer { TestEnvironment.removeTree(directory) }
        let store = try Self.open("\(directory)/store")
        let other = try Self.open("\(directory)/store")
        let policy = QuotaPolicy(quota: 10_000)
        try store.putBlob([UInt8](repeating: 1, count: 2000))
        #expect(try policy.makeRoom(store: store, for: [:], roots: .init(), logger: nil) == 0)
        // Another process filled the store: the quota check sees it, nothing evictable
        // (linked nowhere is evictable; here everything is kept as roots) fails cleanly.
        let big = try other.putBlob([UInt8](repeating: 2, count: 7000))
        let wanted = Digest("sha256:\(String(repeating: "b", count: 64))")!
        #expect(throws: QuotaPolicy.Error.self) {
            _ = try policy.makeRoom(store: store, for: [wanted: 5000], roots: .init(blobs: Set(try store.allBlobs())), logger: nil)
        }
        #expect(GarbageCollector.diskUse(store: store) == 9000)
        _ = big
    }
}
