import Logging
import NIOPosix
import Synchronization
import Testing
import TestSupport

@testable import ContentStore
@testable import OCICore
@testable import TinyRegistry

/// The pull-through seam fed by the test: one blob whose download the test writes through
/// the store's real ingest, as the proxy's transfer does.
final class FedPullThrough: PullThrough {
    let blob: GrowingBlob

    init(blob: GrowingBlob) {
        self.blob = blob
    }

    func route(_ name: RepositoryName, namespace: String?) -> PullThroughRoute? {
        PullThroughRoute(local: name, remote: name, registry: nil)
    }
    func isStale(_ route: PullThroughRoute, tag: String) -> Bool { false }
    func fetchManifest(_ route: PullThroughRoute, reference: Reference) async throws {
        throw PullThroughError(.notFound, "no manifests here")
    }
    func blobSize(_ route: PullThroughRoute, digest: Digest) async throws -> Int64 { blob.size }
    func fetchBlob(_ route: PullThroughRoute, digest: Digest) async throws -> GrowingBlob { blob }
    func referrers(_ route: PullThroughRoute, of digest: Digest) async throws -> [UInt8]? { nil }
    func recordHit() {}
}

extension RegistryServerTests {
    /// A body that follows a download (``BodyStreamer``), with sendfile and read through the
    /// pool (TLS, 32-bit): curl receives every byte as it is written, the last one only once
    /// the digest matched; a failed transfer cuts the response (curl sees a short body).
    @Test(arguments: [true, false])
    func growingBlobStreamsAsItIsWrittenAndIsCutWhenTheTransferFails(useSendfile: Bool) async throws {
        for fails in [false, true] {
            let content = (0..<700_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
            let digest = ContentHasher.digest(of: content)
            let fed = Mutex<FedPullThrough?>(nil)
            let h = try Harness(useSendfile: useSendfile) { store in
                let pullThrough = FedPullThrough(blob: GrowingBlob(digest: digest, size: Int64(content.count), store: store))
                fed.withLock { $0 = pullThrough }
                return pullThrough
            }
            try await h.start()
            let blob = try #require(fed.withLock { $0 }).blob
            let ingest = try #require(try await h.server.api.store.claimDownload(digest))
            let out = "\(h.directory)/out"
            let url = "\(h.base)/v2/proxied/app/blobs/\(digest)"
            // curl blocks its thread: on NIO's thread pool, not the cooperative pool (two cores
            // mean two cooperative threads, which other suites' tests need meanwhile).
            let client = Task {
                try await NIOThreadPool.singleton.runIfActive {
                    try Subprocess.run(["curl", "-s", "-N", "-o", out, "-w", "%{http_code}", url], timeout: 60)
                }
            }

            // Written in pieces while curl reads; it has the first pieces before the end.
            let pieces = stride(from: 0, to: content.count, by: 100_000).map { Array(content[$0..<min($0 + 100_000, content.count)]) }
            for (index, piece) in pieces.enumerated() {
                try ingest.write(piece)
                blob.advance(to: ingest.offset)
                if index == 3 {
                    var received: Int64 = 0
                    for _ in 0..<500 where received < 400_000 {
                        try await Task.sleep(nanoseconds: 20_000_000)
                        received = (try? PosixFile.status(out).size) ?? 0
                    }
                    #expect(received == 400_000, "curl had \(received) bytes of the 400000 written")
                }
            }
            if fails {
                blob.fail("digest mismatch (test)")
                ingest.discard()
            } else {
                try ingest.commit(expected: digest, verified: { blob.finish() })
            }
            let result = try await client.value
            let got = try PosixFile.readAll(path: out, limit: 1 << 20)
            if fails {
                #expect(result.status != 0, "curl saw a clean end of a failed transfer: \(result)")
                #expect(got.count < content.count)
            } else {
                #expect(result.status == 0 && result.output == "200", "\(result)")
                #expect(got.count == content.count && ContentHasher.digest(of: got) == digest)
            }
            await h.stop()
        }
    }
}
