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

        /// schemathesis (PyPI) against a running ground-control on SQLite and PostgreSQL:
        /// every response conforms to /openapi.json (= docs/ground-control.openapi.json), no 5xx.
        @Test func conformsToItsOpenAPIDocument() throws {
            try EndToEnd.run("gc_openapi.sh", [Self.binary])
        }

        /// registry.kind = harbor against a stand-in of Harbor's API v2.0 (harbor_standin.py):
        /// robot created, secret rotated at ZTR and refresh, re-scoped, deleted; Harbor refusing
        /// leaves no row changed.
        @Test func harborRobotAccounts() throws {
            try EndToEnd.run("gc_harbor.sh", [Self.binary])
        }

        /// HTTPS (tls.certFile/keyFile): curl with the CA, and satellite-lite onboarding and
        /// heartbeating with groundControl.caFile.
        @Test func servesHTTPS() throws {
            try EndToEnd.run("gc_tls.sh", [Self.binary, TestEnvironment.binary])
        }
    }
}
