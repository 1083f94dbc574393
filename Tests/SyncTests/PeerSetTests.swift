import Testing

@testable import ContentStore
@testable import OCICore
@testable import Sync

@Suite struct PeerSetTests {
    let proof = PeerProof(secret: Array("a site secret of some length".utf8))

    @Test func everySatelliteRanksTheSameWayAndBlobsSpreadOverFetchers() throws {
        let urls = ["http://10.0.0.11:5000", "http://10.0.0.12:5000", "http://10.0.0.13:5000"]
        var firsts: [String: Int] = [:]
        for i in 0..<60 {
            let digest = ContentHasher.digest(of: Array("blob \(i)".utf8))
            let ranking = PeerSet.rank(urls, for: digest)
            #expect(Set(ranking) == Set(urls))
            #expect(PeerSet.rank(urls.reversed(), for: digest) == ranking)
            firsts[ranking[0], default: 0] += 1
        }
        // Each satellite is the WAN fetcher of some blobs, none of all.
        #expect(firsts.count == 3)
        #expect(firsts.values.allSatisfy { $0 < 60 })
    }

    @Test func downPeersAndLiarsAreLeftOutAndSelfIsNeverAPeer() throws {
        let peers = PeerSet(
            selfURL: "http://10.0.0.11:5000/", urls: ["http://10.0.0.11:5000", "http://10.0.0.12:5000", "http://10.0.0.13:5000/"],
            proof: proof)
        #expect(peers.known == ["http://10.0.0.12:5000", "http://10.0.0.13:5000"])
        peers.markDown("http://10.0.0.12:5000")
        #expect(peers.live() == ["http://10.0.0.13:5000"])
        peers.markUp("http://10.0.0.12:5000")
        #expect(peers.live().count == 2)
        let digest = ContentHasher.digest(of: Array("x".utf8))
        peers.markLiar("http://10.0.0.13:5000", for: digest)
        #expect(peers.isLiar("http://10.0.0.13:5000", for: digest))
        #expect(!peers.isLiar("http://10.0.0.13:5000", for: ContentHasher.digest(of: Array("y".utf8))))
        peers.heard("http://10.0.0.14:5000")
        peers.heard("http://10.0.0.11:5000")
        #expect(peers.known == ["http://10.0.0.12:5000", "http://10.0.0.13:5000", "http://10.0.0.14:5000"])
    }

    @Test func silentDiscoveredPeersExpire() async throws {
        let peers = PeerSet(selfURL: "http://10.0.0.11:5000", urls: [], proof: proof, discoveryExpiry: 50_000_000)
        peers.heard("http://10.0.0.14:5000")
        #expect(peers.known == ["http://10.0.0.14:5000"])
        try await Task.sleep(nanoseconds: 120_000_000)
        #expect(peers.known.isEmpty)
    }
}
