import Testing
import TestSupport

extension EndToEnd {
    /// LAN peers (issue 16) in network namespaces: a site LAN bridge, the upstream behind a
    /// tbf-limited WAN link whose bytes tc counts.
    @Suite struct Peers {
        /// Three satellites sync one image at once (WAN carries it once), discovery with a
        /// stranger's announcements ignored, a satellite killed mid-transfer, a lying peer.
        @Test func threeSatellitesShareOneWANDownloadAndSurviveDeadAndLyingPeers() throws {
            try EndToEnd.run("wan_peers.sh", [TestEnvironment.binary])
        }
    }
}
