import Synchronization
import Testing
import TestSupport

@testable import ContentStore
@testable import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite struct ManagedTagsTests {
    /// Another process holding `sync/managed.lock` (flock locks belong to the open file, so a
    /// second open in this process conflicts exactly as another process's would) holds back
    /// a writer here until it released the lock, and neither write is lost.
    @Test func aWriterWaitsForAnotherProcesssLockAndKeepsItsChange() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let store = try BlobStore(
            configuration: .init(
                root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 3_600_000_000_000,
                fsyncInterval: 1 << 20))
        try PosixFile.makeDirectories(store.layout.sync)
        let other = try PosixFile.open(ManagedTags.lockPath(store), O_RDWR | O_CREAT)
        defer { PosixFile.close(other) }
        #expect(flock(other, LOCK_EX) == 0)
        // The other process read the file before this one's writer starts.
        var theirs = ManagedTags.read(store: store)

        let wrote = Atomic<Bool>(false)
        let writer = Task.detached {
            try ManagedTags.withLock(store: store) {
                var managed = ManagedTags.read(store: store)
                managed.tags["here/app:1"] = "sha256:" + String(repeating: "a", count: 64)
                try managed.write(store: store)
                wrote.store(true, ordering: .relaxed)
            }
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        let early = wrote.load(ordering: .relaxed)
        #expect(!early, "the writer did not wait for the lock")
        theirs.tags["there/app:1"] = "sha256:" + String(repeating: "b", count: 64)
        try theirs.write(store: store)
        #expect(flock(other, LOCK_UN) == 0)
        try await writer.value
        let done = wrote.load(ordering: .relaxed)
        #expect(done)

        let final = ManagedTags.read(store: store)
        #expect(final.tags.keys.sorted() == ["here/app:1", "there/app:1"])
    }
}
