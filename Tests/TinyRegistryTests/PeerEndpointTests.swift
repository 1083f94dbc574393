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
            try request("\(PeerProof.blobPathPrefix)\(digest)", method: method, query: query, extra: extra, proved: proved)
        }

        /// curl of any path of the registry listener; `proved` adds a fresh proof.
        func request(
            _ path: String, method: String = "GET", query: String = "", extra: [String] = [], proved: Bool = true
        ) throws -> (status: Int, headers: String, body: String, exit: Int32) {
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

    /// An image manifest in `h`'s store, linked into `repository` and tagged `tag`; the tag
    /// recorded as the sync's (`ManagedTags`) when `managed`.
    static func tagged(_ h: Harness, _ repository: String, _ tag: String, managed: Bool, seed: UInt8) throws -> Digest {
        let configBytes = Array(#"{"seed":\#(seed)}"#.utf8)
        let config = try h.store.putBlob(configBytes)
        let layer = try h.store.putBlob(bytes(1000, seed: seed))
        let manifest = Array(
            """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":\(configBytes.count)},\
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layer)","size":1000}]}
            """.utf8)
        let digest = try h.store.putBlob(manifest)
        let name = try #require(RepositoryName(repository))
        try h.store.linkManifest(digest, mediaType: "application/vnd.oci.image.manifest.v1+json", into: name)
        try h.store.setTag(name, tag, to: digest)
        if managed {
            var tags = ManagedTags.read(store: h.store)
            tags.tags["\(repository):\(tag)"] = digest.description
            try tags.write(store: h.store)
        }
        return digest
    }

    @Test func manifestsByDigestOnlyToProofs() async throws {
        let h = try Harness()
        try await h.start()
        defer { Task { await h.stop() } }
        let digest = try Self.tagged(h, "site/app", "v1", managed: false, seed: 4)
        let path = "\(PeerProof.manifestPathPrefix)\(digest)"
        let refused = try h.request(path, proved: false)
        #expect(refused.status == 401)
        #expect(TestEnvironment.read(refused.body)?.contains("UNAUTHORIZED") == true)
        // Any repository, tagged by whoever: a manifest is only bytes with a digest.
        let got = try h.request(path)
        #expect(got.status == 200)
        #expect(got.headers.lowercased().contains("content-type: application/vnd.oci.image.manifest.v1+json"))
        #expect(got.headers.lowercased().contains("docker-content-digest: \(digest)"))
        #expect(ContentHasher.digest(of: try PosixFile.readAll(path: got.body, limit: 1 << 20)) == digest)
        let head = try h.request(path, method: "HEAD")
        #expect(head.status == 200)
        // A blob that is no manifest, and a digest the store lacks: 404.
        let layer = try h.store.putBlob(Self.bytes(5000, seed: 9))
        #expect(try h.request("\(PeerProof.manifestPathPrefix)\(layer)").status == 404)
        #expect(try h.request("\(PeerProof.manifestPathPrefix)\(ContentHasher.digest(of: [7]))").status == 404)
        // A proof is for one path: a proof of another digest is refused.
        let other = "\(PeerProof.manifestPathPrefix)\(layer)"
        let misused = try h.request(path, extra: ["-H", "Authorization: \(h.proof.authorization(method: "GET", path: other))"], proved: false)
        #expect(misused.status == 401)
    }

    @Test func tagsOnlyWhenTheSyncManagesThem() async throws {
        let h = try Harness()
        try await h.start()
        defer { Task { await h.stop() } }
        let managed = try Self.tagged(h, "site/app", "v1", managed: true, seed: 5)
        _ = try Self.tagged(h, "site/app", "pushed", managed: false, seed: 6)
        let path = "\(PeerProof.tagPathPrefix)site/app/v1"
        #expect(try h.request(path, proved: false).status == 401)
        let got = try h.request(path)
        #expect(got.status == 200)
        #expect(got.headers.lowercased().contains("docker-content-digest: \(managed)"))
        #expect(TestEnvironment.read(got.body)?.contains(managed.description) == true)
        #expect(try h.request(path, method: "HEAD").status == 200)
        // A tag a client pushed, a tag nobody holds, another repository: 404, never a digest.
        let pushed = try h.request("\(PeerProof.tagPathPrefix)site/app/pushed")
        #expect(pushed.status == 404)
        #expect(!pushed.headers.lowercased().contains("docker-content-digest"))
        #expect(try h.request("\(PeerProof.tagPathPrefix)site/app/v2").status == 404)
        #expect(try h.request("\(PeerProof.tagPathPrefix)other/app/v1").status == 404)
        // The managed tag moved by a client (the sync's record is stale): 404.
        let moved = try Self.tagged(h, "site/app", "v1", managed: false, seed: 7)
        #expect(moved != managed)
        #expect(try h.request(path).status == 404)
        // Invalid names and tags are refused before anything is read.
        #expect(try h.request("\(PeerProof.tagPathPrefix)Site/App/v1").status == 400)
        #expect(try h.request("\(PeerProof.tagPathPrefix)site/app/-bad").status == 404)
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

    /// Claims (`POST /peer/v1/claims/<digest>`): what a satellite answers a peer about to
    /// fetch a blob from its upstream, at each step of its own claim.
    @Test func claimsRecordEveryAskerWhileDecidingAndAnswerTheOutcome() async throws {
        let h = try Harness()
        try await h.start()
        defer { Task { await h.stop() } }
        let content = Self.bytes(100_000, seed: 4)
        let digest = ContentHasher.digest(of: content)
        let path = "\(PeerProof.claimPathPrefix)\(digest)"
        // curl blocks: on NIO's thread pool, not the cooperative pool other suites share.
        func ask(_ asker: String = "http://10.0.0.12:5000", proved: Bool = true) async throws -> (status: Int, claim: String) {
            let answer = try await NIOThreadPool.singleton.runIfActive {
                try h.request(path, method: "POST", extra: ["--data", "", "-H", "Satellite-Peer: \(asker)"], proved: proved)
            }
            let body = (try? PosixFile.readAll(path: answer.body, limit: 4096)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return (answer.status, body)
        }
        #expect(try await ask(proved: false).status == 401)
        #expect(try await ask("ftp://x").status == 400)
        #expect(try await ask() == (200, #"{"claim":"none"}"#))
        let ingest = try #require(try await h.store.claimDownload(digest))
        h.store.setFollowing(digest, true)
        #expect(try await ask().claim == #"{"claim":"none"}"#)  // following another peer, not deciding
        h.store.beginClaim(digest)
        #expect(try await ask().claim == #"{"claim":"deciding"}"#)
        #expect(try await ask().claim == #"{"claim":"deciding"}"#)
        #expect(try await ask("http://10.0.0.13:5000").claim == #"{"claim":"deciding"}"#)
        var recorded: [String] = []
        #expect(h.store.settleClaim(digest) { askers in
            recorded = askers
            return true
        })
        #expect(recorded == ["http://10.0.0.12:5000", "http://10.0.0.13:5000"])
        #expect(try await ask().claim == #"{"claim":"holding"}"#)  // won, not fetching yet
        h.store.beginClaim(digest)
        #expect(!h.store.settleClaim(digest) { _ in false })
        #expect(try await ask().claim == #"{"claim":"none"}"#)  // lost: follows the winner
        h.store.setFollowing(digest, false)
        #expect(try await ask().claim == #"{"claim":"holding"}"#)  // fetching
        // A claim left by a writer that died (its download lock went with it) counts for nothing.
        h.store.setFollowing(digest, true)
        h.store.beginClaim(digest)
        _ = h.store.settleClaim(digest) { _ in true }
        try ingest.suspend()
        #expect(try await ask().claim == #"{"claim":"none"}"#)
        // The next writer starts without it.
        let next = try #require(try await h.store.claimDownload(digest))
        #expect(!PosixFile.exists(h.store.claimPath(digest)))
        try next.write(content)
        try next.commit(expected: digest)
        #expect(try await ask().claim == #"{"claim":"holding"}"#)
    }
}
