import ContentStore
import Logging
import OCICore
import Testing
import TestSupport

@testable import Sync

@Suite struct PullThroughProxyTests {
    func makeProxy(_ directory: String, allow: [String] = [], upstream: Bool = true) throws -> (PullThroughProxy, [UpstreamClient]) {
        let store = try BlobStore(
            configuration: .init(root: "\(directory)/store", fsyncOnCommit: false, bufferSize: 4096, uploadTimeout: 1, fsyncInterval: 1 << 20))
        let limiter = BandwidthLimiter.shared(bytesPerSecond: 0)
        // Nothing listens on these: routing never contacts an upstream.
        let main = UpstreamClient(configuration: .init(baseURL: "http://127.0.0.1:9", threads: 1), limiter: limiter)
        let hub = UpstreamClient(configuration: .init(baseURL: "http://127.0.0.1:9", threads: 1), limiter: limiter)
        let proxy = PullThroughProxy(
            configuration: .init(allows: { name in allow.isEmpty || allow.contains { name.hasPrefix($0) } }),
            store: store, policy: AcceptAllPolicy(), upstream: upstream ? main : nil, mirrors: ["docker.io": hub],
            logger: Logger(label: "test"))
        return (proxy, [main, hub])
    }

    func name(_ text: String) throws -> RepositoryName { try #require(RepositoryName(text)) }

    @Test func containerdNamespaceAndPathPrefixMapToTheMirrorsFolder() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let (proxy, clients) = try makeProxy(directory)
        defer { Task { for client in clients { await client.shutdown() } } }

        let byNamespace = try #require(proxy.route(try name("library/nginx"), namespace: "docker.io"))
        #expect(byNamespace.local.value == "docker.io/library/nginx")
        #expect(byNamespace.remote.value == "library/nginx")
        #expect(byNamespace.registry == "docker.io")

        let byPrefix = try #require(proxy.route(try name("docker.io/library/nginx"), namespace: nil))
        #expect(byPrefix == byNamespace)

        // Another ns (containerd names the upstream itself): the configured upstream, same name.
        let plain = try #require(proxy.route(try name("library/nginx"), namespace: "harbor.example.com"))
        #expect(plain.local.value == "library/nginx" && plain.remote.value == "library/nginx" && plain.registry == nil)
    }

    @Test func allowDecidesWhetherAMissGoesUpstream() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let (proxy, clients) = try makeProxy(directory, allow: ["library/", "docker.io/library/"])
        defer { Task { for client in clients { await client.shutdown() } } }
        #expect(proxy.route(try name("library/app"), namespace: nil)?.allowed == true)
        #expect(proxy.route(try name("secret/app"), namespace: nil)?.allowed == false)
        #expect(proxy.route(try name("library/app"), namespace: "docker.io")?.allowed == true)
        #expect(proxy.route(try name("bitnami/redis"), namespace: "docker.io")?.allowed == false)
    }

    @Test func withoutAnUpstreamOnlyMirrorNamesRoute() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let (proxy, clients) = try makeProxy(directory, upstream: false)
        defer { Task { for client in clients { await client.shutdown() } } }
        #expect(proxy.route(try name("library/app"), namespace: nil) == nil)
        #expect(proxy.route(try name("docker.io/library/app"), namespace: nil) != nil)
        // A tag never checked is due at once.
        let route = try #require(proxy.route(try name("docker.io/library/app"), namespace: nil))
        #expect(proxy.isStale(route, tag: "v1"))
    }
}
