import Fleet
import JSONCoding
import Logging
import SatelliteConfig
import Sync
import Synchronization
import TestSupport
import Testing
import ContentStore
import OCICore

@testable import FleetLink

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@Suite struct FleetLinkTests {
    static let ztrAnswer = #"{"state": "http://127.0.0.1:9/satellite/satellite-state/edge-01/state:latest", "auth": {"url": "http://127.0.0.1:9", "username": "robot$edge-01", "password": "s3cret-1"}}"#

    func temporaryStore() -> String {
        var template = Array("/tmp/fleetlink-test-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func makeLink(_ url: String, store: String, token: String? = "join-token-1") throws -> FleetLink {
        var gc = ConfigFile.GroundControl(url: url)
        gc.token = token
        gc.heartbeat = 1_000_000_000
        return try FleetLink(configuration: gc, storeRoot: store, logger: Logger(label: "test"))
    }

    @Test func ztrFallsBackToGetAndIsNeverCalledAgain() async throws {
        let server = try await ScriptedServer { seen in
            if seen.method == "POST" { return .init(status: 405, body: "") }
            return .init(status: 200, body: Self.ztrAnswer)
        }
        defer { Task { await server.stop() } }
        let store = temporaryStore()
        let link = try makeLink(server.url, store: store)
        let record = try await link.onboard()
        #expect(record.name == "edge-01")
        #expect(record.stateArtifact == "satellite/satellite-state/edge-01/state:latest")
        #expect(server.requests.map(\.method) == ["POST", "GET"])
        #expect(server.requests[0].body == Array(#"{"token":"join-token-1"}"#.utf8))
        #expect(server.requests[1].path == "/satellites/ztr/join-token-1")
        // The stored answer is private and complete.
        var info = stat()
        #expect(stat(link.files.link, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(try PosixFile.list(link.files.folder).allSatisfy { !$0.hasPrefix(".tmp") })
        await link.shutdown()
        // A restart with no token at all uses the stored link: no request goes out.
        let again = try makeLink(server.url, store: store, token: nil)
        let second = try await again.onboard()
        #expect(second == record)
        #expect(server.requests.count == 2)
        let config = again.apply(to: ConfigFile())
        #expect(config.upstream?.url == "http://127.0.0.1:9")
        #expect(config.upstream?.password == "s3cret-1")
        #expect(config.state.artifact == "satellite/satellite-state/edge-01/state:latest")
        await again.shutdown()
    }

    @Test func onboardingBacksOffWhileUnavailableAndHonoursRetryAfter() async throws {
        let server = try await ScriptedServer { _ in .init(status: 503, body: #"{"error": "starting"}"#, headers: [("Retry-After", "1")]) }
        defer { Task { await server.stop() } }
        let link = try makeLink(server.url, store: temporaryStore())
        let answered = Mutex(false)
        let started = MonotonicClock.now()
        Task {
            try await Task.sleep(nanoseconds: 2_500_000_000)
            answered.withLock { $0 = true }
            server.setScript { _ in .init(status: 200, body: Self.ztrAnswer) }
        }
        let record = try await link.onboard()
        let elapsed = MonotonicClock.now() - started
        #expect(record.name == "edge-01")
        #expect(answered.withLock { $0 })
        // 503s were retried, each after at least the second Retry-After asks for.
        let posts = server.requests.filter { $0.method == "POST" }
        #expect(posts.count >= 2 && posts.count <= 4)
        #expect(elapsed >= 2_500_000_000)
        await link.shutdown()
    }

    @Test func plainHTTPRegistryNeedsPlainHTTPGroundControlOrInsecure() throws {
        let store = temporaryStore()
        let record = LinkRecord(
            groundControl: "https://gc.example", name: "edge-01", state: "http://r.example/satellite/satellite-state/edge-01/state:latest",
            registry: RegistryCredentials(url: "http://r.example", username: "u", password: "p"), onboardedAt: 1)
        try FleetFiles.writePrivate(FleetFiles(storeRoot: store).link, try JSONCoder.encode(record))
        var gc = ConfigFile.GroundControl(url: "https://gc.example")
        #expect(try FleetLink(configuration: gc, storeRoot: store, logger: Logger(label: "test")).apply(to: ConfigFile()).upstream == nil)
        gc.insecure = true
        #expect(try FleetLink(configuration: gc, storeRoot: store, logger: Logger(label: "test")).apply(to: ConfigFile()).upstream?.url == "http://r.example")
        let lab = ConfigFile.GroundControl(url: "http://gc.example")
        #expect(try FleetLink(configuration: lab, storeRoot: store, logger: Logger(label: "test")).apply(to: ConfigFile()).upstream?.password == "p")
    }

    @Test func refusedTokenIsAnErrorWithoutTheToken() async throws {
        let server = try await ScriptedServer { _ in .init(status: 404, body: #"{"error": "token not found"}"#) }
        defer { Task { await server.stop() } }
        let link = try makeLink(server.url, store: temporaryStore())
        do {
            _ = try await link.onboard()
            Issue.record("onboarding succeeded with a refused token")
        } catch {
            #expect("\(error)".contains("refused"))
            #expect(!"\(error)".contains("join-token-1"))
        }
        #expect(!PosixFile.exists(link.files.link))
        await link.shutdown()
    }

    @Test func unreachableGroundControlNamesNoToken() async throws {
        let link = try makeLink("http://127.0.0.1:1", store: temporaryStore())
        do {
            _ = try await link.onboard(deadline: MonotonicClock.now() + 1_000_000_000)
            Issue.record("onboarding succeeded without a server")
        } catch {
            #expect("\(error)".contains("unreachable"))
            #expect(!"\(error)".contains("join-token-1"))
        }
        await link.shutdown()
    }

    @Test func heartbeatReplyAsksForRefreshWhichFallsBackToSatRefresh() async throws {
        let server = try await ScriptedServer { seen in
            switch (seen.method, seen.path) {
            case ("POST", "/satellites/ztr"): return .init(status: 200, body: Self.ztrAnswer)
            case ("POST", "/satellites/sync"): return .init(status: 200, body: #"{"events": [], "actions": [{"type": "refresh_credentials"}]}"#)
            case ("POST", "/sat/refresh"): return .init(status: 200, body: #"{"secret": "s3cret-2"}"#)
            default: return .init(status: 404, body: "")
            }
        }
        defer { Task { await server.stop() } }
        let store = temporaryStore()
        let link = try makeLink(server.url, store: store)
        _ = try await link.onboard()
        let blobs = try BlobStore(configuration: .init(root: store, fsyncOnCommit: false, bufferSize: 65536, uploadTimeout: 60_000_000_000, fsyncInterval: 0))
        link.passFinished(durationMs: 1234, complete: true, artifact: ResolvedArtifact(stateDigest: "sha256:" + String(repeating: "a", count: 64), configReference: ""), summary: "last pass: 0/0 image(s) present")
        #expect(await link.sendHeartbeat(store: blobs))
        let beat = try #require(server.requests.first { $0.path == "/satellites/sync" })
        let heartbeat = try JSONCoder.decode(Heartbeat.self, from: beat.body)
        #expect(heartbeat.name == "edge-01")
        #expect(heartbeat.latestStateDigest == "sha256:" + String(repeating: "a", count: 64))
        #expect(heartbeat.lastSyncDurationMs == 1234)
        #expect(heartbeat.memoryUsedBytes > 1_000_000)
        #expect(heartbeat.stateReportInterval == "@every 00h00m01s")
        #expect(heartbeat.activity.contains("0/0 image(s) present"))
        #expect(beat.authorization == "Basic " + Base64.encode(Array("robot$edge-01:s3cret-1".utf8)))
        // What the satellite sent validates against Harbor Satellite's published API.
        let ztr = try #require(server.requests.first { $0.path == "/satellites/ztr" })
        let folder = TestEnvironment.makeTemporaryDirectory("fleet-openapi")
        defer { TestEnvironment.removeTree(folder) }
        try PosixFile.writeAtomically("\(folder)/heartbeat.json", beat.body, durable: false)
        try PosixFile.writeAtomically("\(folder)/ztr.json", ztr.body, durable: false)
        let check = try Subprocess.run([
            "python3", "\(TestEnvironment.repositoryRoot)/Tests/e2e/openapi_check.py",
            "SatelliteStatusParams", "\(folder)/heartbeat.json", "ZTRRequest", "\(folder)/ztr.json",
        ])
        #expect(check.status == 0, "\(check)")
        // The refresh went to /satellites/refresh, then /sat/refresh, with the old secret.
        let refreshes = server.requests.filter { $0.path.hasSuffix("/refresh") }
        #expect(refreshes.map(\.path) == ["/satellites/refresh", "/sat/refresh"])
        #expect(link.record?.registry.password == "s3cret-2")
        // Stored before use, and still private.
        let stored = try JSONCoder.decode(LinkRecord.self, from: try PosixFile.readAll(path: link.files.link, limit: 1 << 20))
        #expect(stored.registry.password == "s3cret-2")
        var info = stat()
        #expect(stat(link.files.link, &info) == 0 && info.st_mode & 0o777 == 0o600)
        // The status file never holds a secret.
        let status = String(decoding: try PosixFile.readAll(path: link.files.status, limit: 1 << 20), as: UTF8.self)
        #expect(!status.contains("s3cret") && !status.contains("join-token"))
        await link.shutdown()
    }

    @Test func unreachableHeartbeatsAreCountedAndTheNextSuccessSaysHowLong() async throws {
        let server = try await ScriptedServer { seen in
            seen.path == "/satellites/ztr" ? .init(status: 200, body: Self.ztrAnswer) : .init(status: 503, body: "")
        }
        defer { Task { await server.stop() } }
        let store = temporaryStore()
        let link = try makeLink(server.url, store: store)
        _ = try await link.onboard()
        let blobs = try BlobStore(configuration: .init(root: store, fsyncOnCommit: false, bufferSize: 65536, uploadTimeout: 60_000_000_000, fsyncInterval: 0))
        #expect(await link.sendHeartbeat(store: blobs) == false)
        #expect(link.status.unreachableSince != nil)
        #expect(link.status.heartbeatsFailed == 1)
        server.setScript { _ in .init(status: 200, body: "") }
        #expect(await link.sendHeartbeat(store: blobs))
        let beat = try #require(server.requests.last)
        let heartbeat = try JSONCoder.decode(Heartbeat.self, from: beat.body)
        #expect(heartbeat.activity.contains("reconnected after"))
        #expect(link.status.unreachableSince == nil)
        #expect(link.metricsText().contains("satellite_heartbeats_total 1"))
        await link.shutdown()
    }

    @Test func heartbeatListsTheStoresImagesWithTheirSizes() throws {
        let root = temporaryStore()
        let store = try BlobStore(configuration: .init(root: root, fsyncOnCommit: false, bufferSize: 65536, uploadTimeout: 60_000_000_000, fsyncInterval: 0))
        let config = Array(#"{"architecture":"amd64","os":"linux"}"#.utf8)
        let layer = [UInt8](repeating: 7, count: 5000)
        let configDigest = try store.putBlob(config)
        let layerDigest = try store.putBlob(layer)
        let manifest = Array("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},\
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(layerDigest)","size":\(layer.count)}]}
            """.utf8)
        let manifestDigest = try store.putBlob(manifest)
        let repository = try #require(RepositoryName("proj/app"))
        try store.linkManifest(manifestDigest, mediaType: "application/vnd.oci.image.manifest.v1+json", into: repository)
        try store.setTag(repository, "v1", to: manifestDigest)

        let link = try makeLink("http://127.0.0.1:1", store: root)
        let heartbeat = link.makeHeartbeat(store: store)
        #expect(heartbeat.imageCount == 1)
        #expect(heartbeat.cachedImages == [CachedImage(reference: "proj/app:v1@\(manifestDigest)", sizeBytes: Int64(manifest.count + config.count + layer.count))])
        #expect(heartbeat.storageUsedBytes == UInt64(manifest.count + config.count + layer.count))
        #expect(heartbeat.requestCreatedTime.hasSuffix("Z") && heartbeat.requestCreatedTime.count == 20)
    }

    @Test func remoteConfigRollbackSurvivesRestart() throws {
        let store = temporaryStore()
        var gc = ConfigFile.GroundControl(url: "http://127.0.0.1:1")
        gc.token = "t"
        let local: JSONValue = .object(["storage": .object(["path": .string(store)]), "groundControl": .object(["url": .string("http://127.0.0.1:1"), "token": .string("t")])])
        let good = try JSON.parse(Array(#"{"app_config": {"state_replication_interval": "@every 00h00m09s"}}"#.utf8))
        let applied = AppliedConfig(digest: "sha256:" + String(repeating: "b", count: 64), document: good)
        try FleetFiles.writePrivate(FleetFiles(storeRoot: store).config, try JSONCoder.encode(applied))
        // A later process (restart) takes the stored last good config.
        let link = try FleetLink(configuration: gc, storeRoot: store, logger: Logger(label: "test"))
        let effective = link.effective(local: local, localConfig: try ConfigFile(json: local))
        #expect(effective.config.state.interval == 9_000_000_000)
    }

    /// SIGHUP: heartbeat, caFile, insecure, remoteConfig/remoteHooks apply at once (a new
    /// client for new TLS settings; a config refused under the old remoteHooks is judged
    /// again); the URL of an onboarded satellite stays (its link belongs to that Ground Control).
    @Test func reloadAppliesWhatItCanAndKeepsTheOnboardedURL() throws {
        let store = temporaryStore()
        let record = LinkRecord(
            groundControl: "https://gc.example", name: "edge-01", state: "https://r.example/satellite/satellite-state/edge-01/state:latest",
            registry: RegistryCredentials(url: "https://r.example", username: "u", password: "p"), onboardedAt: 1)
        try FleetFiles.writePrivate(FleetFiles(storeRoot: store).link, try JSONCoder.encode(record))
        let old = ConfigFile.GroundControl(url: "https://gc.example")
        let link = try FleetLink(configuration: old, storeRoot: store, logger: Logger(label: "test"))
        link.updateStatus { $0.refusedConfigDigest = "sha256:" + String(repeating: "c", count: 64) }
        let client = link.client

        var new = ConfigFile.GroundControl(url: "https://gc2.example")
        new.heartbeat = 7_000_000_000
        new.caFile = "/etc/gc-ca.pem"
        new.remoteHooks = true
        let lines = link.reload(new)

        #expect(lines.contains("groundControl.heartbeat"))
        #expect(lines.contains("groundControl.caFile"))
        #expect(lines.contains("groundControl.remoteHooks"))
        #expect(lines.contains { $0.hasPrefix("not applied: groundControl.url") })
        #expect(link.configuration.url == "https://gc.example")
        #expect(link.configuration.caFile == "/etc/gc-ca.pem")
        #expect(link.configuration.remoteHooks)
        #expect(link.state.withLock { $0.heartbeatInterval } == 7_000_000_000)
        #expect(link.client !== client)
        #expect(link.client.configuration.caFile == "/etc/gc-ca.pem")
        #expect(link.client.configuration.url == "https://gc.example")
        #expect(link.status.refusedConfigDigest.isEmpty)
        // The same settings again change nothing and keep the client.
        let current = link.client
        #expect(link.reload(link.configuration).isEmpty)
        #expect(link.client === current)
    }
}
