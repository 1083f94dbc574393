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

    /// satellite-lite joins a fleet run by the real ground-control, with Debian's
    /// docker-registry as the central registry and ground-control as its token issuer.
    /// It needs the ground-control product: until that lands in this package, the test
    /// cannot run (and says so) rather than running against a stand-in.
    @Suite struct Fleet {
        /// An onboarded satellite with Ground Control unreachable: serves, syncs from the
        /// registry, applies and refuses remote configs, rolls back across a restart.
        @Test func offlineFromGroundControl() throws {
            try EndToEnd.run("fleet_offline.sh", [TestEnvironment.binary])
        }

        @Test(.enabled(if: access(EndToEnd.groundControlBinary, X_OK) == 0, "needs the ground-control product built next to satellite-lite"))
        func onboardSyncHeartbeatRemoteConfig() throws {
            try EndToEnd.run(
                "fleet_ground_control.sh", [TestEnvironment.binary, EndToEnd.groundControlBinary], timeout: 600)
        }
    }
}
