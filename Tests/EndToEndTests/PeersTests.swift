import Testing
import TestSupport

extension EndToEnd {
    /// LAN peers (issue 16) in network namespaces: a site LAN bridge, the upstream behind a
    /// tbf-limited WAN link whose bytes tc counts.
    @Suite struct Peers {
        /// Three satellites sync one image at once (WAN carries it once), discovery with a
        /// stranger's announcements ignored, a satellite killed mid-transfer, a lying peer.
        @Test func threeSatellitesShareOneWANDownloadAndSurviveDeadAndLyingPeers() async throws {
            try await EndToEnd.run("wan_peers.sh", [TestEnvironment.binary])
        }

        /// Outside its sync window a satellite takes an update its peer holds (tag, manifest
        /// and blobs over the LAN, 0 WAN bytes); a tag no peer's sync holds pauses the pass.
        @Test func outsideItsWindowASatelliteTakesAnUpdateFromItsPeers() async throws {
            try await EndToEnd.run("wan_peers_window.sh", [TestEnvironment.binary], timeout: 90)
        }

        /// Peers over HTTPS (registry.tls, a site CA): a blob comes from a peer with a site-CA
        /// certificate for its IP; a peer with a foreign CA's certificate, or one not for its
        /// address, is refused (logged) and the WAN used instead; discovery announces https.
        @Test func peersOverHTTPSTrustOnlyTheSiteCAAndTheirAddress() async throws {
            try await EndToEnd.run("wan_peers_tls.sh", [TestEnvironment.binary], timeout: 120)
        }
    }
}
