import Crypto
import Fleet
import FoundationEssentials
import OCICore
import JSONCoding
import Logging
import SQLKit
import Synchronization


/// Pushes group, satellite and config states to the central registry as Harbor Satellite's
/// state artifacts (Fleet.StateArtifact: one tar.gz layer with `artifacts.json`), tagged
/// `latest` and with a timestamp, after every change that affects them.
///
/// Documents are read back from the database, never from memory, so any replica can
/// publish. An unchanged document has an unchanged digest (the artifact is deterministic)
/// and is not pushed again (gc_published).
public final class StatePublisher: Sendable {
    let repository: FleetRepository
    let config: GroundControlConfig
    let tokenIssuer: TokenIssuer?
    let logger: Logger
    let failureCount = Atomic<Int>(0)

    public var failures: Int { failureCount.load(ordering: .relaxed) }

    public init(repository: FleetRepository, config: GroundControlConfig, tokenIssuer: TokenIssuer?, logger: Logger) {
        self.repository = repository
        self.config = config
        self.tokenIssuer = tokenIssuer
        self.logger = logger
    }

    /// Publishes the states of these groups, configs and satellites; failures are logged
    /// and counted (`gc_state_publish_failures_total`), and retried on the next change.
    public func publish(groups: [String] = [], configs: [String] = [], satellites: [String] = []) async {
        for group in groups {
            await attempt(FleetNames.groupStateRepository(group)) {
                try await self.repository.groupStateDocument(group).map { try JSONCoder.encode($0) }
            }
        }
        for name in configs {
            await attempt(FleetNames.configStateRepository(name)) {
                guard let view = try? await self.repository.configDocument(name) else { return nil }
                return view.config.serialized()
            }
        }
        for satellite in satellites {
            await attempt(FleetNames.satelliteStateRepository(satellite)) {
                try await self.repository.satelliteStateDocument(satellite).map { try JSONCoder.encode($0) }
            }
        }
    }

    /// After a deletion: an empty document replaces the state, so a satellite still
    /// following it stops holding what it named.
    public func unpublish(repository name: String) async {
        await attempt(name) { Array("{}".utf8) }
    }

    func attempt(_ repositoryName: String, _ document: @Sendable () async throws -> [UInt8]?) async {
        do {
            guard let bytes = try await document() else { return }
            try await push(repository: repositoryName, document: bytes)
        } catch {
            failureCount.add(1, ordering: .relaxed)
            logger.warning("state publishing failed", metadata: ["repository": "\(repositoryName)", "error": "\(error)"])
        }
    }

    public func push(repository name: String, document: [UInt8]) async throws {
        let artifact = StateArtifact(document: document) { Secrets.sha256Hex(bytes: $0) }
        let previous = try await repository.database.withDatabase { db in
            try await db.raw("SELECT digest FROM gc_published WHERE repository = \(bind: name)").first()?.decode(
                column: "digest", as: String.self)
        }
        if previous == artifact.manifestDigest { return }
        let authorization = try authorization(repository: name)
        for (digest, bytes) in [(artifact.configDigest, artifact.config), (artifact.layerDigest, artifact.layer)] {
            try await putBlob(repository: name, digest: digest, bytes: bytes, authorization: authorization)
        }
        let stamp = Self.timestampTag()
        for tag in ["latest", stamp] {
            try await send(
                "PUT", try url("/v2/\(name)/manifests/\(tag)"),
                headers: [("Content-Type", StateArtifact.manifestMediaType), ("Authorization", authorization)],
                body: artifact.manifest, expect: [201, 200])
        }
        let now = FleetRepository.now()
        let digest = artifact.manifestDigest
        try await repository.database.withDatabase { db in
            try await db.raw(
                """
                INSERT INTO gc_published (repository, digest, pushed_at) VALUES (\(bind: name), \(bind: digest), \(bind: now))
                ON CONFLICT (repository) DO UPDATE SET digest = excluded.digest, pushed_at = excluded.pushed_at
                """
            ).run()
        }
        logger.info("state published", metadata: ["repository": "\(name)", "digest": "\(digest)"])
    }

    static func timestampTag() -> String { UTCTime.compact(MonotonicClock.wallNow() / 1_000_000_000) }

    func authorization(repository name: String) throws -> String {
        if config.registry.kind == "distribution", let tokenIssuer {
            let token = try tokenIssuer.token(
                subject: "ground-control",
                access: [.init(type: "repository", name: name, actions: ["pull", "push"])])
            return "Bearer \(token)"
        }
        return "Basic " + Data("\(config.registry.username):\(config.registryPassword)".utf8).base64EncodedString()
    }

    /// The registry's URL for `path` (`https://` when the configured URL names no scheme).
    func url(_ path: String) throws -> String {
        var base = config.registry.url
        if !base.hasPrefix("http://") && !base.hasPrefix("https://") { base = "https://" + base }
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }

    func putBlob(repository name: String, digest: String, bytes: [UInt8], authorization: String) async throws {
        let auth = [("Authorization", authorization)]
        if (try? await send("HEAD", try url("/v2/\(name)/blobs/\(digest)"), headers: auth, expect: [200])) != nil { return }
        let started = try await send("POST", try url("/v2/\(name)/blobs/uploads/"), headers: auth, expect: [202])
        guard let location = started.header("Location") else {
            throw PublishError("the registry gave no upload location")
        }
        let absolute = location.hasPrefix("http") ? location : try url(location)
        let separator = absolute.contains("?") ? "&" : "?"
        try await send(
            "PUT", absolute + separator + "digest=" + digest,
            headers: auth + [("Content-Type", "application/octet-stream")], body: bytes, expect: [201])
    }

    @discardableResult
    func send(_ method: String, _ url: String, headers: [(String, String)], body: [UInt8]? = nil, expect: Set<Int>) async throws
        -> OutboundHTTP.Answer
    {
        let answer: OutboundHTTP.Answer
        do { answer = try await OutboundHTTP.send(method, url, headers: headers, body: body, limit: 1 << 20) } catch {
            throw PublishError("\(method) \(url): \(error)")
        }
        guard expect.contains(answer.status) else {
            throw PublishError("\(method) \(url): \(answer.status) \(answer.bodyPrefix())")
        }
        return answer
    }
}

struct PublishError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
