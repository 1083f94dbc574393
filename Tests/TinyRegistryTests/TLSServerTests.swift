import Logging
import NIOCore
import Testing
import TestSupport

import ContentStore
@testable import TinyRegistry

/// `registry.tls`: certificate pairs made by openssl (the real tool), and a live HTTPS
/// listener driven by curl.
@Suite(.serialized) struct TLSServerTests {
    /// A P-256 self-signed certificate for 127.0.0.1 and its key in `directory`, named NAME.pem/NAME.key.
    static func makePair(_ directory: String, _ name: String) throws {
        let result = try Subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).pem", "-days", "2",
                "-subj", "/CN=\(name)", "-addext", "subjectAltName=IP:127.0.0.1",
            ], timeout: 60)
        #expect(result.status == 0, "openssl: \(result)")
    }

    @Test func pairsThatDoNotServeAreRefusedWithTheFileNamed() throws {
        let directory = TestEnvironment.makeTemporaryDirectory("tls-test")
        defer { TestEnvironment.removeTree(directory) }
        try Self.makePair(directory, "one")
        try Self.makePair(directory, "two")
        let certificates = try TLSCertificates(certFile: "\(directory)/one.pem", keyFile: "\(directory)/one.key")
        #expect(certificates.summary.hasPrefix("CN=one, valid until 20"))
        #expect(TLSCertificates.protocols.hasPrefix("TLSv1.2"))

        func refusal(_ cert: String, _ key: String) -> String {
            do {
                _ = try TLSCertificates(certFile: cert, keyFile: key)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(refusal("\(directory)/one.pem", "\(directory)/two.key").contains("does not belong to the certificate"))
        #expect(refusal("\(directory)/missing.pem", "\(directory)/one.key").contains("\(directory)/missing.pem is not a readable PEM certificate"))
        TestEnvironment.write("\(directory)/garbage.key", "not a key\n")
        #expect(refusal("\(directory)/one.pem", "\(directory)/garbage.key").contains("\(directory)/garbage.key is not a readable"))

        // A reload that fails keeps the pair in use; one that loads replaces it.
        #expect(throws: TLSConfigurationError.self) {
            try certificates.reload(certFile: "\(directory)/one.pem", keyFile: "\(directory)/two.key")
        }
        #expect(certificates.summary.hasPrefix("CN=one,"))
        #expect(try certificates.reload(certFile: "\(directory)/two.pem", keyFile: "\(directory)/two.key").hasPrefix("CN=two,"))
        #expect(certificates.summary.hasPrefix("CN=two,"))
    }

    /// Push and pull over HTTPS with a small buffer, so a blob goes out in many bounded reads
    /// (never sendfile), including a range that starts mid-buffer.
    @Test func liveListenerServesBlobsAndRangesOverTLS() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory("tls-test")
        defer { TestEnvironment.removeTree(directory) }
        try Self.makePair(directory, "server")
        let store = try BlobStore(
            configuration: .init(
                root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 16384, uploadTimeout: 3_600_000_000_000,
                fsyncInterval: 1 << 20))
        let server = RegistryServer(
            configuration: .init(
                host: "127.0.0.1", port: 0, eventLoopThreads: 1, blockingThreads: 2, maxConnections: 64, bufferSize: 16384,
                bufferCount: 4, tls: try TLSCertificates(certFile: "\(directory)/server.pem", keyFile: "\(directory)/server.key")),
            api: RegistryAPI(store: store),
            logger: Logger(label: "test"))
        let address = try await server.start()
        let base = "https://127.0.0.1:\(address.port ?? 0)"
        func curl(_ arguments: [String]) throws -> String {
            try Subprocess.run(["curl", "-s", "--cacert", "\(directory)/server.pem"] + arguments, timeout: 60).output
        }

        // 1 MiB + 7 random bytes.
        let path = "\(directory)/blob"
        func sh(_ script: String) throws -> String {
            try Subprocess.run(["bash", "-c", script], timeout: 60).output.trimmed()
        }
        _ = try sh("head -c 1048583 /dev/urandom > '\(path)'")
        let digest = "sha256:" + (try sh("sha256sum '\(path)' | cut -d' ' -f1"))
        let location = try sh("curl -s --cacert '\(directory)/server.pem' -D - -o /dev/null -X POST '\(base)/v2/t/b/blobs/uploads/' | tr -d '\\r' | awk 'tolower($1)==\"location:\"{print $2}'")
        #expect(location.hasPrefix("/v2/t/b/blobs/uploads/"))
        let separator = location.firstIndex(of: "?") == nil ? "?" : "&"
        let put = try curl(["-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary", "@\(path)", "\(base)\(location)\(separator)digest=\(digest)"])
        #expect(put == "201")

        let back = try sh("curl -s --cacert '\(directory)/server.pem' '\(base)/v2/t/b/blobs/\(digest)' | sha256sum | cut -d' ' -f1")
        #expect("sha256:" + back == digest)
        // A range that starts and ends mid-buffer, compared with the same bytes of the file.
        let range = try sh(
            "curl -s --cacert '\(directory)/server.pem' -H 'Range: bytes=20000-1048581' '\(base)/v2/t/b/blobs/\(digest)' "
                + "| cmp - <(tail -c +20001 '\(path)' | head -c 1028582) && echo same")
        #expect(range == "same")

        // Plain HTTP on the TLS port: a 400 saying to use https, then the close.
        let plain = try Subprocess.run(["curl", "-s", "http://127.0.0.1:\(address.port ?? 0)/v2/"], timeout: 30)
        #expect(plain.output.contains("HTTPS only"))
        #expect(server.api.metrics.render(store: store).contains("satellite_tls_failures_total 1"))
        await server.shutdown()
    }
}
