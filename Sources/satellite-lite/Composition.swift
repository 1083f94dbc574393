import Logging
import SatelliteConfig
import Sync
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry
import Trust

/// Builds the modules' configurations from the settings: the CLI is where they meet.
extension Settings {
    /// The registry's configuration: store location and every server tunable, and the
    /// `registry.tls` certificate when set.
    ///
    /// Throws a one-line ``CLIError`` when the certificate or key does not load.
    func makeRegistryConfiguration() throws -> RegistryServer.Configuration {
        var tls: TLSCertificates?
        if let files = config.registry.tls {
            do {
                tls = try TLSCertificates(certFile: files.certFile, keyFile: files.keyFile, handshakeTimeout: .nanoseconds(files.handshakeTimeout))
            } catch {
                throw CLIError("registry.tls: \(error)")
            }
        }
        return RegistryServer.Configuration(
            host: config.registry.listen.host,
            port: config.registry.listen.port,
            eventLoopThreads: profile.registry.eventLoopThreads,
            blockingThreads: profile.registry.blockingThreads,
            maxConnections: maxConnections,
            bufferSize: profile.io.bufferSize,
            bufferCount: profile.io.bufferCount,
            tls: tls,
            timeouts: connectionTimeouts)
    }

    /// `registry.idleTimeout` and `registry.headerTimeout` (0 turns one off).
    var connectionTimeouts: ConnectionTimeouts {
        ConnectionTimeouts(
            idle: config.registry.idleTimeout > 0 ? .nanoseconds(config.registry.idleTimeout) : nil,
            header: config.registry.headerTimeout > 0 ? .nanoseconds(config.registry.headerTimeout) : nil)
    }

    var storeConfiguration: BlobStore.Configuration {
        BlobStore.Configuration(
            root: config.storage.path,
            fsyncOnCommit: profile.storage.fsyncOnCommit,
            bufferSize: profile.io.bufferSize,
            uploadTimeout: profile.registry.uploadTimeout,
            fsyncInterval: profile.storage.fsyncInterval)
    }

    /// The upstream password from `passwordFile` or `passwordEnv` (never logged).
    func upstreamPassword() throws -> String? {
        guard let upstream = config.upstream else { return nil }
        if let password = upstream.password { return password }
        if let file = upstream.passwordFile {
            do {
                let bytes = try PosixFile.readAll(path: file, limit: 64 * 1024)
                return String(decoding: bytes, as: UTF8.self).trimmed(leading: false, where: { $0.isNewline })
            } catch {
                throw CLIError("cannot read upstream.passwordFile \(file): \(error)")
            }
        }
        if let variable = upstream.passwordEnv {
            guard let value = getenvString(variable) else {
                throw CLIError("upstream.passwordEnv names \(variable), which is not set")
            }
            return value
        }
        return nil
    }

    func makeClient() throws -> UpstreamClient {
        guard let upstream = config.upstream, let url = UpstreamURL(upstream.url) else {
            throw CLIError("no upstream configured: add \"upstream\": {\"url\": \"https://…\"} to \(source)")
        }
        let client = UpstreamClient(
            configuration: .init(
                baseURL: url.base, username: upstream.username, password: try upstreamPassword(), caFile: upstream.caFile,
                insecure: upstream.insecure, connectTimeout: profile.sync.connectTimeout, stallTimeout: profile.sync.stallTimeout,
                bufferSize: profile.io.bufferSize, threads: syncConcurrency + 2),
            limiter: BandwidthLimiter.shared(bytesPerSecond: bandwidth), gate: wanGate)
        return client
    }

    var desiredState: DesiredStateSource? {
        if let artifact = config.state.artifact, let reference = ImageReference(artifact) { return .artifact(reference) }
        if let file = config.state.file { return .file(file) }
        if !config.state.images.isEmpty { return .images(config.state.images) }
        return nil
    }

    var syncPlatform: SyncEngine.Platform? {
        if let text = config.sync.platform {
            if text == "all" { return nil }
            let parts = text.split(separator: "/").map(String.init)
            return SyncEngine.Platform(os: parts[0], architecture: parts[1], variant: parts.count > 2 ? parts[2] : nil)
        }
        if profile.platform.all { return nil }
        return SyncEngine.Platform(os: profile.platform.os, architecture: profile.platform.architecture, variant: profile.platform.variant)
    }

    func makeEngine(store: BlobStore, client: UpstreamClient, events: (any SyncEventSink)?, logger: Logger) throws -> SyncEngine {
        guard let source = desiredState else {
            throw CLIError("no desired state: add \"state\": {\"images\": [\"repo:tag\"]} (or artifact/file) to \(source)")
        }
        var configuration = SyncEngine.Configuration(
            source: source, platform: syncPlatform, concurrency: syncConcurrency, timeout: config.sync.timeout,
            quota: quotaBytes(store: store), gcPolicy: gcPolicy)
        let trust = try makeTrustPolicy()
        configuration.signedRepositories = { trust.rule(for: $0.value) != nil }
        return SyncEngine(
            configuration: configuration, store: store, content: try peeredContent(client, store: store, logger: logger), events: events,
            policy: makePublishPolicy(trust, events: events, logger: logger), logger: logger)
    }

    /// The quota in bytes: the configured size, or the profile's share of the filesystem.
    func quotaBytes(store: BlobStore) -> Int64 {
        switch quota {
        case .bytes(let bytes): bytes
        case .share(let share): Int64(Double(GarbageCollector.filesystemSize(store: store)) * share)
        }
    }

    /// The quota, the watermarks of the run loop's collection, and what GC may evict.
    func quotaPolicy(store: BlobStore) -> QuotaPolicy {
        QuotaPolicy(
            quota: quotaBytes(store: store), highWatermark: profile.gc.highWatermark, lowWatermark: profile.gc.lowWatermark,
            gc: gcPolicy)
    }

    var gcPolicy: GarbageCollector.Policy {
        GarbageCollector.Policy(
            keepPushedTags: config.storage.keepPushedTags, gracePeriod: profile.gc.gracePeriod / 1_000_000_000)
    }

    /// What garbage collection must keep whatever the policy: the images of the config's
    /// desired state (an artifact or file state is only known to a sync pass, which keeps
    /// its own images while it runs; its tags are kept as tags).
    var gcRoots: GarbageCollector.Roots {
        GarbageCollector.Roots(
            tags: Set(config.state.images.compactMap { image in image.tag.map { "\(image.repository):\($0)" } }),
            digests: config.state.images.compactMap { image in image.digest.map { (image.repository, $0) } })
    }
}

