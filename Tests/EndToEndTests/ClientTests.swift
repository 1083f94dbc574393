import Testing
import TestSupport

/// Real clients against the real binary: skopeo, podman and containerd (ctr through a
/// hosts.toml mirror). The scripts live in Tests/e2e and also run by hand.
@Suite(.serialized) struct ClientTests {
    static let scripts = "\(TestEnvironment.repositoryRoot)/Tests/e2e"

    func runScript(_ name: String, _ arguments: [String], timeout: Int = 300) throws {
        let result = try Subprocess.run(["\(Self.scripts)/\(name)"] + arguments, timeout: timeout)
        #expect(result.status == 0, "\(name): \(result)")
    }

    @Test func skopeoRoundTripIsByteIdentical() throws {
        let satellite = try SatelliteProcess()
        try runScript("skopeo_roundtrip.sh", [satellite.address])
        #expect(satellite.stop() == 0, "graceful stop on SIGTERM")
    }

    @Test func podmanPulls() throws {
        let satellite = try SatelliteProcess()
        try runScript("podman_pull.sh", [satellite.address])
    }

    @Test func containerdPullsThroughAHostsTomlMirror() throws {
        let satellite = try SatelliteProcess()
        try runScript("ctr_mirror_pull.sh", [satellite.address])
    }
}
