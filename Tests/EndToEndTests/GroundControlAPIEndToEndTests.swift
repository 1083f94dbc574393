import Testing
import TestSupport

extension EndToEnd.GroundControl {
    /// schemathesis (PyPI) against a running ground-control on SQLite and PostgreSQL:
    /// every response conforms to /openapi.json (= docs/ground-control.openapi.json), no 5xx.
    @Test func conformsToItsOpenAPIDocument() async throws {
        try await EndToEnd.run("gc_openapi.sh", [Self.binary])
    }

    /// registry.kind = harbor against a stand-in of Harbor's API v2.0 (harbor_standin.py):
    /// robot created, secret rotated at ZTR and refresh, re-scoped, deleted; Harbor refusing
    /// leaves no row changed.
    @Test func harborRobotAccounts() async throws {
        try await EndToEnd.run("gc_harbor.sh", [Self.binary])
    }

    /// HTTPS (tls.certFile/keyFile): curl with the CA, and satellite-lite onboarding and
    /// heartbeating with groundControl.caFile.
    @Test func servesHTTPS() async throws {
        try await EndToEnd.run("gc_tls.sh", [Self.binary, TestEnvironment.binary])
    }
}
