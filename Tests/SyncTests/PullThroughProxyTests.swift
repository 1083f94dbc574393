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

    /// A reload (SIGHUP, Ground Control's upstream) swaps the settings and clients in place:
    /// routing follows at once; a client that was not reused is shut down, a reused one not.
    @Test func updatePutsNewSettingsAndClientsInEffect() async throws {
        let directory = TestEnvironment.makeTemporaryDirectory()
        defer { TestEnvironment.removeTree(directory) }
        let (proxy, clients) = try makeProxy(directory, upstream: false)
        let main = clients[0], hub = clients[1]
        defer { Task { await main.shutdown() } }
        // No upstream yet (fleet mode before onboarding): only mirror names route.
        #expect(proxy.route(try name("factory/app"), namespace: nil) == nil)

        let quay = UpstreamClient(configuration: .init(baseURL: "http://127.0.0.1:9", threads: 1), limiter: main.limiter)
        defer { Task { await quay.shutdown() } }
        proxy.update(
            configuration: .init(allows: { $0.hasPrefix("factory/") || $0.hasPrefix("quay.io/") }), policy: AcceptAllPolicy(),
            upstream: main, mirrors: ["quay.io": quay])
        #expect(proxy.route(try name("factory/app"), namespace: nil)?.allowed == true)
        #expect(proxy.route(try name("other/app"), namespace: nil)?.allowed == false)
        #expect(proxy.route(try name("coreos/etcd"), namespace: "quay.io")?.registry == "quay.io")
        // docker.io is gone: its name is now a plain repository of the upstream.
        #expect(proxy.route(try name("library/nginx"), namespace: "docker.io")?.registry == nil)
        #expect(proxy.clients.upstream === main && proxy.clients.mirrors["quay.io"] === quay)

        // The replaced mirror's client is shut down (nothing used it): its pool refuses work
        // (a live one gets as far as the closed port: a link error).
        func isShutDown(_ client: UpstreamClient) async -> Bool {
            do {
                _ = try await client.fetch("/v2/", scope: "", method: "HEAD", limit: 0)
                return false
            } catch is SyncError {
                return false
            } catch {
                return true
            }
        }
        var shutDown = false
        for _ in 0..<50 where !shutDown {
            try await Task.sleep(nanoseconds: 100_000_000)
            shutDown = await isShutDown(hub)
        }
        #expect(shutDown, "the replaced mirror's client was not shut down")
        let mainAlive = await !isShutDown(main)
        let quayAlive = await !isShutDown(quay)
        #expect(mainAlive && quayAlive, "a client in use was shut down")

        proxy.update(configuration: .init(enabled: false), policy: AcceptAllPolicy(), upstream: nil, mirrors: [:])
        #expect(proxy.route(try name("factory/app"), namespace: nil) == nil)
        #expect(proxy.configuration.enabled == false)
    }
}
