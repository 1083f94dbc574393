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

        @Test func satelliteCredentialPullsItsGroupsOnly() throws {
            try EndToEnd.run("gc_registry_token.sh", [Self.binary])
        }
    }
}
