import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension EndToEnd {
    /// The ground-control binary built next to satellite-lite (the fleet server's product).
    static var groundControlBinary: String {
        var path = TestEnvironment.binary
        if let slash = path.lastIndex(of: "/") { path = String(path[..<slash]) }
        return "\(path)/ground-control"
    }

    /// The fleet link against real peers.
    @Suite struct Fleet {
        /// An onboarded satellite with Ground Control unreachable: serves, syncs from the
        /// registry, applies and refuses remote configs, rolls back across a restart.
        @Test func offlineFromGroundControl() async throws {
            try await EndToEnd.run("fleet_offline.sh", [TestEnvironment.binary])
        }

        /// satellite-lite joins a fleet run by the real ground-control, with Debian's
        /// docker-registry as the central registry and ground-control as its token issuer.
        @Test func onboardSyncHeartbeatRemoteConfig() async throws {
            try #require(
                access(EndToEnd.groundControlBinary, X_OK) == 0,
                "no ground-control at \(EndToEnd.groundControlBinary): `swift build --build-tests` builds it")
            try await EndToEnd.run(
                "fleet_ground_control.sh", [TestEnvironment.binary, EndToEnd.groundControlBinary], timeout: 600)
        }

        /// SIGHUP reloads groundControl.caFile (onboarding completes without a restart) and
        /// heartbeat; a url change of an onboarded satellite and a broken file are refused.
        @Test func sighupReloadsGroundControlKeys() async throws {
            try #require(access(EndToEnd.groundControlBinary, X_OK) == 0, "no ground-control at \(EndToEnd.groundControlBinary)")
            try await EndToEnd.run("fleet_reload.sh", [TestEnvironment.binary, EndToEnd.groundControlBinary], timeout: 180)
        }

        /// ground-control's refresh_credentials: the satellite rotates its secret, the old one
        /// is refused, it keeps pulling from docker-registry with the new one.
        @Test func credentialRefreshAskedByGroundControl() async throws {
            try #require(access(EndToEnd.groundControlBinary, X_OK) == 0, "no ground-control at \(EndToEnd.groundControlBinary)")
            try await EndToEnd.run("fleet_refresh.sh", [TestEnvironment.binary, EndToEnd.groundControlBinary], timeout: 240)
        }
    }
}
