import Logging
import NIOCore
import NIOPosix
import Testing
import TestSupport

@testable import ContentStore
@testable import OCICore
@testable import TinyRegistry

/// The peer endpoint (`/peer/v1/blobs/<digest>`) over real loopback, driven by curl: only
/// proofs of the site secret get blobs; a download in progress is followed to its end, and
/// cut when its writer gives up.
@Suite(.serialized) struct PeerEndpointTests {
    final class Harness: @unchecked Sendable {
        let directory = TestEnvironment.makeTemporaryDirectory("peer-endpoint-test")
        let store: BlobStore
        let server: RegistryServer
        let proof = PeerProof(secret: Array("the site secret of this test".utf8))
        var base = ""

        init() throws {
            store = try BlobStore(
                configuration: .init(
                    root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 16384, uploadTimeout: 3_600_000_000_000,
                    fsyncInterval: 1 << 20))
            server = RegistryServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0, eventLoopThreads: 1, blockingThreads: 2, maxConnections: 64, bufferSize: 16384,
                    bufferCount: 4),
                api: RegistryAPI(store: store, peerProof: proof), logger: Logger(label: "test"))
        }

        func start() async throws {
            let address = try await server.start()
            base = "http://127.0.0.1:\(address.port ?? 0)"
        }

        func stop() async {
            await server.shutdown()
            TestEnvironment.removeTree(directory)
        }

        /// curl of the peer endpoint for `digest`; `proved` adds a fresh proof. Returns the
        /// status, the response headers and the body's file.
        func peer(
            _ digest: Digest, method: String = "GET", proved: Bool = true, query: String = "", extra: [String] = []
        ) throws -> (status: Int, headers: String, body: String, exit: Int32) {
            let path = "\(PeerProof.blobPathPrefix)\(digest)"
            let token = PosixFile.randomToken()
            let body = "\(directory)/body-\(token)", headers = "\(directory)/headers-\(token)"
            var arguments = ["curl", "-s", "-D", headers, "-o", body, "-w", "%{http_code}"]
            if method == "HEAD" { arguments.append("-I") }
            if proved { arguments += ["-H", "Authorization: \(proof.authorization(method: method, path: path))"] }
            let result = try Subprocess.run(arguments + extra + ["\(base)\(path)\(query)"], timeout: 60)
            return (Int(result.output.trimmed()) ?? 0, TestEnvironment.read(headers) ?? "", body, result.status)
        }
    }

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    @Test func onlyProofsOfTheSecretGetStoredBlobs() async throws {
        let h = try Harness()
        try await h.start()
        defer { Task { await h.stop() } }
        let content = Self.bytes(300_000, seed: 1)
        let digest = try h.store.putBlob(content)
        let refused = try h.peer(digest, proved: false)
        #expect(refused.status == 401)
        #expect(TestEnvironment.read(refused.body)?.contains("UNAUTHORIZED") == true)
        let got = try h.peer(digest)
        #expect(got.status == 200)
        #expect(got.headers.lowercased().contains("satellite-blob-state: complete"))
        #expect(ContentHasher.digest(of: try PosixFile.readAll(path: got.body, limit: 1 << 20)) == digest)
        let range = try h.peer(digest, extra: ["-H", "Range: bytes=1000-1999"])
        #expect(range.status == 206)
        #expect(try PosixFile.readAll(path: range.body, limit: 1 << 20) == Array(content[1000...1999]))
        let unknown = try h.peer(ContentHasher.digest(of: [1, 2, 3]))
        #expect(unknown.status == 404)
        #expect(unknown.headers.lowercased().contains("satellite-syncing: 0"))
    }

    @Test func aDownloadInProgressIsFollowedToItsEnd() async throws {
        let h = try Harness()
        try await h.start()
        defer { Task { await h.stop() } }
        let content = Self.bytes(2_000_000, seed: 2)
        let digest = ContentHasher.digest(of: content)
        let ingest = try #require(try await h.store.claimDownload(digest))
        try ingest.write(Array(content[0..<500_000]))
        let head = try h.peer(digest, method: "HEAD")
        #expect(head.status == 200)
        #expect(head.headers.lowercased().contains("satellite-blob-state: fetching"))
        #expect(head.headers.lowercased().contains("satellite-blob-offset: 500000"))
        // A follower marked as such is no source.
        h.store.setFollowing(digest, true)
        #expect(try h.peer(digest, method: "HEAD").status == 404)
        h.store.setFollowing(digest, false)
        #expect(try h.peer(digest, query: "").status == 400)  // a follower must name the size
        // curl blocks: on a thread of its own, not the cooperative pool the server's follower
        // and this test's sleeps need.
        let follower = Task {
            try await NIOThreadPool.singleton.runIfActive {
                try h.peer(digest, query: "?size=\(content.count)", extra: ["-H", "Range: bytes=100000-"])
            }
        }
        for start in stride(from: 500_000, to: content.count, by: 250_000) {
            try await Task.sleep(nanoseconds: 100_000_000)
            try ingest.write(Array(content[start..<min(start + 250_000, content.count)]))
        }
        try ingest.commit(expected: digest)
        let got = try await follower.value
        #expect(got.status == 206)
        #expect(try PosixFile.readAll(path: got.body, limit: 4 << 20) == Array(content[100_000...]))
    }

    @Test func aFollowerIsCutWhenTheWriterGivesUp() async throws {
        let h = try Harness()
        try await h.start()
        defer { Task { await h.stop() } }
        let content = Self.bytes(1_000_000, seed: 3)
        let digest = ContentHasher.digest(of: content)
        let ingest = try #require(try await h.store.claimDownload(digest))
        try ingest.write(Array(content[0..<300_000]))
        let follower = Task { try await NIOThreadPool.singleton.runIfActive { try h.peer(digest, query: "?size=\(content.count)") } }
        try await Task.sleep(nanoseconds: 300_000_000)
        try ingest.suspend()
        let got = try await follower.value
        // curl reports the short body (exit 18: partial file); never the whole blob.
        #expect(got.exit != 0)
        #expect(try PosixFile.readAll(path: got.body, limit: 4 << 20).count < content.count)
    }
}
