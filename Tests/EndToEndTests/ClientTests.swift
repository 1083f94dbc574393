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

/// Hostile requests and kill -9 during pushes, against the real binary.
@Suite(.serialized) struct RobustnessTests {
    static let scripts = "\(TestEnvironment.repositoryRoot)/Tests/e2e"

    @Test func hostileInputGetsClearErrorsAndChangesNothingOutsideTheStore() throws {
        let result = try Subprocess.run(["\(Self.scripts)/hostile.sh", "--bin", TestEnvironment.binary], timeout: 300)
        #expect(result.status == 0, "\(result)")
    }

    @Test func killDuringPushesLeavesOnlyVerifiedBlobs() throws {
        let result = try Subprocess.run(
            ["\(Self.scripts)/crash_push.sh", TestEnvironment.binary], environment: ["ROUNDS": "6"], timeout: 600)
        #expect(result.status == 0, "\(result)")
    }
}
