import Testing
import TestSupport

extension EndToEnd {
    /// ground-control (built next to satellite-lite) as the token issuer of Debian's
    /// docker-registry: credential scoping, ZTR once, state artifacts, CLI verbs.
    @Suite struct GroundControl {
        static var binary: String {
            var path = TestEnvironment.binary
            if let slash = path.lastIndex(of: "/") { path = String(path[..<slash]) }
            return path + "/ground-control"
        }

        @Test func satelliteCredentialPullsItsGroupsOnly() async throws {
            try await EndToEnd.run("gc_registry_token.sh", [Self.binary])
        }

        /// The fleet page in headless Chromium over a real fleet (ground-control, docker-registry,
        /// satellite-lite): login form, counters, states, screenshot, detail; cross-site logins
        /// refused; group change -> new state artifact -> drift until the satellite reports
        /// the new digests; removal from the last group.
        @Test func fleetPageInABrowserAndDriftUntilReported() async throws {
            try await EndToEnd.run("gc_fleet_page.sh", [TestEnvironment.binary, Self.binary], timeout: 300)
        }

        /// README's fleet quick start, as a new operator runs it: ends with the satellite in
        /// sync in `ground-control status` and on the fleet page.
        @Test func readmeFleetQuickStart() async throws {
            try await EndToEnd.run("readme_fleet.sh", [TestEnvironment.binary, Self.binary], timeout: 300)
        }
    }
}
