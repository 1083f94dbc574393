import Logging
import NIOCore
import Testing
import TestSupport

import ContentStore
@testable import TinyRegistry

/// `registry.push` and the protected tags: htpasswd entries made by Apache's htpasswd (the
/// real tool), and a live server driven by curl.
@Suite(.serialized) struct PushAuthorizerTests {
    /// `htpasswd -nb FLAG user password`: one line `user:hash`.
    static func entry(_ flag: String, _ user: String, _ password: String) throws -> String {
        let result = try Subprocess.run(["htpasswd", "-nb", flag, user, password], timeout: 60)
        return result.output.split(separator: "\n").first.map(String.init) ?? ""
    }

    @Test(arguments: ["-B", "-2", "-5"])
    func htpasswdHashKindsVerify(flag: String) throws {
        let line = try Self.entry(flag, "alice", "s3cret pass")
        let users = try Htpasswd(parsing: line + "\n", name: "users")
        #expect(users.verify(user: "alice", password: Array("s3cret pass".utf8)))
        #expect(!users.verify(user: "alice", password: Array("s3cret pasS".utf8)))
        #expect(!users.verify(user: "alice", password: []))
        #expect(!users.verify(user: "bob", password: Array("s3cret pass".utf8)))
        #expect(!users.verify(user: "alice", password: Array("s3cret\u{0}pass".utf8)))
    }

    @Test func weakOrMalformedEntriesAreRefusedAtLoad() throws {
        for line in [try Self.entry("-m", "md5", "x"), try Self.entry("-s", "sha1", "x"), "plain:text", ":$2y$05$abc", "nocolon"] {
            #expect(throws: Htpasswd.Error.self) { try Htpasswd(parsing: line, name: "users") }
        }
        let users = try Htpasswd(parsing: "# comment\n\n" + (try Self.entry("-B", "a", "b")) + "\r\n", name: "users")
        #expect(users.count == 1)
    }

    @Test func basicCredentialsParsing() {
        #expect(PushAuthorizer.basicCredentials("Basic YWxpY2U6cHc6Og==").map { $0.0 } == "alice")
        #expect(PushAuthorizer.basicCredentials("basic YWxpY2U6cHc6Og==").map { $0.1 } == Array("pw::".utf8))
        #expect(PushAuthorizer.basicCredentials("Basic Og==").map { $0.0 } == "")
        for bad in ["", "Basic", "Bearer abc", "Basic !!!", "Basic YWxpY2U=", "Basic YWxp Y2U6cHc=", "Basic " + String(repeating: "A", count: 5000)] {
            #expect(PushAuthorizer.basicCredentials(bad) == nil)
        }
    }

    @Test func loopbackAddresses() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] { #expect(PushAuthorizer.isLoopback(ip: ip)) }
        for ip in ["10.0.0.1", "128.0.0.1", "::2", "::ffff:10.0.0.1", "127.0.0", "fe80::1"] { #expect(!PushAuthorizer.isLoopback(ip: ip)) }
    }

    @Test func failureDelayGrowsPerClientAndResetsOnSuccess() throws {
        let users = try Htpasswd(parsing: try Self.entry("-B", "alice", "pw"), name: "users")
        let authorizer = PushAuthorizer(mode: .authenticated, users: users, baseDelay: .milliseconds(100), maxDelay: .milliseconds(350))
        let delays = (0..<4).compactMap { _ in authorizer.verify(user: "alice", password: Array("no".utf8), client: "10.0.0.9")?.delay }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(350), .milliseconds(350)])
        #expect(authorizer.verify(user: "x", password: [], client: "10.0.0.8")?.delay == .milliseconds(100))
        #expect(authorizer.verify(user: "alice", password: Array("pw".utf8), client: "10.0.0.9") == nil)
        #expect(authorizer.failureCount("10.0.0.9") == 0)
    }

    /// A live server in `authenticated` mode with one protected tag.
    @Test func liveAuthenticatedPushAndProtectedTags() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory("push-auth-test")
        defer { TestEnvironment.removeTree(directory) }
        let store = try BlobStore(
            configuration: .init(
                root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 16384, uploadTimeout: 3_600_000_000_000,
                fsyncInterval: 1 << 20))
        let users = try Htpasswd(parsing: try Self.entry("-B", "alice", "pw"), name: "users")
        let protected = ProtectedTags()
        protected.replace(with: [("app/web", "v1")])
        let server = RegistryServer(
            configuration: .init(
                host: "127.0.0.1", port: 0, eventLoopThreads: 1, blockingThreads: 2, maxConnections: 64, bufferSize: 16384,
                bufferCount: 4),
            api: RegistryAPI(
                store: store, authorizer: PushAuthorizer(mode: .authenticated, users: users, baseDelay: .milliseconds(300)),
                protectedTags: protected),
            logger: Logger(label: "test"))
        let address = try await server.start()
        let base = "http://127.0.0.1:\(address.port ?? 0)"
        func curl(_ arguments: [String]) throws -> (status: Int, headers: String, body: String) {
            let result = try Subprocess.run(["curl", "-s", "-D", "-", "-w", "\n%{http_code}"] + arguments, timeout: 60)
            let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"), result.output)
        }
        do {
            // Pulls stay open; the version check challenges so clients learn to send credentials.
            #expect(try curl(["\(base)/v2/_catalog"]).status == 200)
            let ping = try curl(["\(base)/v2/"])
            #expect(ping.status == 401)
            #expect(ping.headers.lowercased().contains("www-authenticate: basic realm=\"satellite-lite\""))
            #expect(try curl(["-u", ":", "\(base)/v2/"]).status == 200)
            #expect(try curl(["-u", "alice:pw", "\(base)/v2/"]).status == 200)

            let noAuth = try curl(["-X", "POST", "\(base)/v2/app/web/blobs/uploads/"])
            #expect(noAuth.status == 401)
            #expect(noAuth.body.contains("UNAUTHORIZED"))
            let wrong = try curl(["-u", "alice:nope", "-X", "POST", "\(base)/v2/app/web/blobs/uploads/"])
            #expect(wrong.status == 401)
            let good = try curl(["-u", "alice:pw", "-X", "POST", "\(base)/v2/app/web/blobs/uploads/"])
            #expect(good.status == 202)

            // The protected tag: 403 even with good credentials; another tag is fine.
            let config = "{}"
            let configDigest = try #require(curl(["-u", "alice:pw", "-X", "POST", "--data-binary", config, "-H", "Content-Type: application/octet-stream",
                "\(base)/v2/app/web/blobs/uploads/?digest=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"]).status == 201 ? "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" : nil)
            let manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"\#(configDigest)"},"layers":[]}"#
            let put = ["-u", "alice:pw", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", manifest]
            let denied = try curl(put + ["\(base)/v2/app/web/manifests/v1"])
            #expect(denied.status == 403)
            #expect(denied.body.contains("DENIED"))
            #expect(try curl(put + ["\(base)/v2/app/web/manifests/mine"]).status == 201)
            #expect(try curl(["-u", "alice:pw", "-X", "DELETE", "\(base)/v2/app/web/manifests/v1"]).status == 403)
            #expect(try curl(["-u", "alice:pw", "-X", "DELETE", "\(base)/v2/app/web/blobs/\(configDigest)"]).status == 403)
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }
}
