import Logging
import NIOCore
import Testing
import TestSupport
import TinyRegistry

@testable import ContentStore
@testable import OCICore
@testable import Sync

/// Claims between satellites over real loopback (each its own store and registry listener
/// with the peer endpoint): however their requests interleave, of the satellites deciding
/// at once exactly one wins the claim on a blob (docs/sync.md, "Who fetches a blob").
@Suite(.serialized) struct PeerClaimTests {
    @Test func ofSatellitesClaimingAtOnceExactlyOneWins() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory("peer-claim-test")
        defer { TestEnvironment.removeTree(directory) }
        let proof = PeerProof(secret: Array("the site secret of the claim test".utf8))
        var stores: [BlobStore] = []
        var servers: [RegistryServer] = []
        var urls: [String] = []
        for i in 0..<3 {
            let store = try BlobStore(
                configuration: .init(root: "\(directory)/s\(i)", fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 1, fsyncInterval: 1 << 20))
            let server = RegistryServer(
                configuration: .init(
                    host: "127.0.0.1", port: 0, eventLoopThreads: 1, blockingThreads: 2, maxConnections: 64, bufferSize: 16384,
                    bufferCount: 4),
                api: RegistryAPI(store: store, peerProof: proof), logger: Logger(label: "test"))
            let address = try await server.start()
            stores.append(store)
            servers.append(server)
            urls.append("http://127.0.0.1:\(address.port ?? 0)")
        }
        // Nothing listens here: a claim never contacts the upstream.
        let upstream = UpstreamClient(
            configuration: .init(baseURL: "http://127.0.0.1:9", threads: 1), limiter: BandwidthLimiter.shared(bytesPerSecond: 0))
        let networks = urls.map { PeerNetwork(peers: PeerSet(selfURL: $0, urls: urls, proof: proof), threads: 2) }
        let sources = (0..<3).map {
            PeeredSource(upstream: upstream, network: networks[$0], store: stores[$0], logger: Logger(label: "test"))
        }
        for round in 0..<60 {
            let digest = ContentHasher.digest(of: Array("blob \(round)".utf8))
            // Each satellite holds its download and waits (the follow marker), as in fetchBlob.
            var ingests: [Ingest] = []
            for store in stores {
                ingests.append(try #require(try await store.claimDownload(digest)))
                store.setFollowing(digest, true)
            }
            // Starts spread from simultaneous to one after the other.
            let spread = UInt64(round % 4) * 4_000_000
            let winners = await withTaskGroup(of: Int?.self) { group in
                for (i, source) in sources.enumerated() {
                    group.addTask {
                        if spread > 0 { try? await Task.sleep(nanoseconds: UInt64.random(in: 0...spread)) }
                        return await source.claim(digest, excluding: []) ? i : nil
                    }
                }
                var winners: [Int] = []
                for await winner in group { if let winner { winners.append(winner) } }
                return winners
            }
            #expect(winners.count == 1, "round \(round): winners \(winners)")
            // Once decided, a late claimant yields to the winner.
            if let winner = winners.first {
                let late = (winner + 1) % 3
                #expect(await !sources[late].claim(digest, excluding: []), "round \(round)")
            }
            for (i, ingest) in ingests.enumerated() {
                stores[i].endClaim(digest)
                ingest.discard()
            }
        }
        for network in networks { await network.shutdown() }
        for server in servers { await server.shutdown() }
    }
}
