import Testing

@testable import Sync

@Suite struct ProxiedBlobSourceTests {
    func probe(_ url: String, _ holding: PeerClient.Holding, elapsed: Int64 = 1_000_000) -> PeerClient.Probe {
        PeerClient.Probe(url: url, holding: holding, syncing: false, elapsed: elapsed)
    }

    @Test func aPeerHoldingTheBlobWinsTheFastestFirst() {
        let probes = [
            probe("http://a", .fetching(900)), probe("http://b", .complete, elapsed: 5_000_000), probe("http://c", .complete, elapsed: 2_000_000),
        ]
        #expect(ProxiedBlobSource.choose(probes, excluding: []) == "http://c")
        #expect(ProxiedBlobSource.choose(probes, excluding: ["http://c"]) == "http://b")
    }

    @Test func elseThePeerFurthestOnInItsOwnDownloadIsFollowed() {
        let probes = [probe("http://a", .fetching(100)), probe("http://b", .fetching(700)), probe("http://c", .following)]
        #expect(ProxiedBlobSource.choose(probes, excluding: []) == "http://b")
        #expect(ProxiedBlobSource.choose(probes, excluding: ["http://b"]) == "http://a")
    }

    @Test func followersAndPeersWithoutTheBlobSendTheProxyToTheUpstream() {
        // Following a follower could make two satellites wait for each other.
        let probes = [probe("http://a", .following), probe("http://b", .absent), probe("http://c", .complete)]
        #expect(ProxiedBlobSource.choose(probes, excluding: ["http://c"]) == nil)
        #expect(ProxiedBlobSource.choose([], excluding: []) == nil)
    }
}
