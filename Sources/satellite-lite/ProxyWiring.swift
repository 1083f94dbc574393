import ContentStore
import Logging
import OCICore
import SatelliteConfig
import Sync
import Trust

/// The pull-through proxy (`proxy`), built from the settings: the upstream client made as
/// the sync makes it (same auth, same bandwidth cap), one client per mirror sharing that
/// cap, the trust policy of the publish step, and the quota's room-making.
extension Settings {
    /// Made whether or not `proxy.enabled` is set: a disabled proxy routes nothing upstream
    /// (the store alone answers) and a reload that enables it puts it to work without a
    /// restart, as every other proxy setting (``updatePullThrough(_:store:logger:)``).
    ///
    /// Throws a one-line ``CLIError`` when a credential file cannot be read.
    func makePullThrough(store: BlobStore, logger: Logger) throws -> PullThroughProxy {
        let parts = try pullThroughParts(store: store, logger: logger, reusing: nil)
        if config.proxy.enabled { logProxy(logger) }
        return PullThroughProxy(
            configuration: parts.configuration, store: store, policy: parts.policy, upstream: parts.upstream, mirrors: parts.mirrors,
            logger: logger)
    }

    /// Puts these settings in effect in `proxy` (after a SIGHUP, or when Ground Control
    /// supplied or changed the upstream and its credentials). Clients whose settings did not
    /// change are kept (their connections too); the others are replaced.
    func updatePullThrough(_ proxy: PullThroughProxy, store: BlobStore, logger: Logger) {
        do {
            let wasEnabled = proxy.configuration.enabled
            let before = proxy.clients
            let parts = try pullThroughParts(store: store, logger: logger, reusing: before)
            proxy.update(configuration: parts.configuration, policy: parts.policy, upstream: parts.upstream, mirrors: parts.mirrors)
            if config.proxy.enabled, !wasEnabled || parts.upstream !== before.upstream || parts.mirrors.keys != before.mirrors.keys {
                logProxy(logger)
            } else if !config.proxy.enabled, wasEnabled {
                logger.info("pull-through proxy disabled: pulls are answered from the store alone")
            }
        } catch {
            logger.error("proxy settings not reloaded; keeping the previous ones", metadata: ["error": "\(error)"])
        }
    }

    private func logProxy(_ logger: Logger) {
        let names = ([config.upstream.map { $0.url }] + config.proxy.mirrors.map { "\($0.registry)=\($0.url)" }).compactMap { $0 }
        logger.info("pull-through proxy enabled", metadata: ["upstreams": "\(names.joined(separator: ", "))", "allow": "\(config.proxy.allow)"])
    }

    private struct PullThroughParts {
        var configuration: PullThroughProxy.Configuration
        var policy: any PublishPolicy
        var upstream: UpstreamClient?
        var mirrors: [String: UpstreamClient]
    }

    private func pullThroughParts(
        store: BlobStore, logger: Logger, reusing previous: (upstream: UpstreamClient?, mirrors: [String: UpstreamClient])?
    ) throws -> PullThroughParts {
        var upstream: UpstreamClient?
        var mirrors: [String: UpstreamClient] = [:]
        if config.proxy.enabled {
            if config.upstream != nil {
                let wanted = try clientConfiguration()
                if let kept = previous?.upstream, Self.same(kept.configuration, wanted), kept.limiter.rate == bandwidth,
                    kept.gate === wanGate
                {
                    upstream = kept
                } else {
                    upstream = try makeClient()
                }
            }
            let limiter = upstream?.limiter ?? BandwidthLimiter.shared(bytesPerSecond: bandwidth)
            // The process's one WAN gate (windows, budget): its policy follows a reload in place.
            let gate = upstream?.gate ?? wanGate
            for mirror in config.proxy.mirrors {
                var password: String?
                if let file = mirror.passwordFile {
                    do {
                        let bytes = try PosixFile.readAll(path: file, limit: 64 * 1024)
                        password = String(decoding: bytes, as: UTF8.self).trimmed(leading: false, where: { $0.isNewline })
                    } catch {
                        throw CLIError("cannot read the passwordFile of mirror \(mirror.registry), \(file): \(error)")
                    }
                }
                let wanted = UpstreamClient.Configuration(
                    baseURL: mirror.url, username: mirror.username, password: password, caFile: mirror.caFile,
                    insecure: mirror.insecure, connectTimeout: profile.sync.connectTimeout, stallTimeout: profile.sync.stallTimeout,
                    bufferSize: profile.io.bufferSize, threads: syncConcurrency + 2)
                if let kept = previous?.mirrors[mirror.registry], Self.same(kept.configuration, wanted), kept.limiter === limiter,
                    kept.gate === gate
                {
                    mirrors[mirror.registry] = kept
                } else {
                    mirrors[mirror.registry] = UpstreamClient(configuration: wanted, limiter: limiter, gate: gate)
                }
            }
        }
        let allow = config.proxy.allow
        let trust = try makeTrustPolicy()
        let quota = quotaPolicy(store: store)
        let roots = gcRoots
        let configuration = PullThroughProxy.Configuration(
            enabled: config.proxy.enabled,
            allows: { name in allow.isEmpty || allow.contains { TrustPolicy.glob($0, matches: name) } },
            tagRecheck: config.proxy.tagRecheck,
            transferTimeout: max(10_000_000_000, profile.sync.stallTimeout * 2),
            continueUnwatched: profile.proxy.continueUnwatched,
            makeRoom: { digest, size in
                _ = try quota.makeRoom(store: store, for: [digest: size], roots: roots, logger: logger)
            })
        return PullThroughParts(
            configuration: configuration, policy: makePublishPolicy(trust, events: nil, logger: logger), upstream: upstream, mirrors: mirrors)
    }

    /// The configuration ``makeClient()`` gives the upstream's client, to tell whether a
    /// reload changed it.
    private func clientConfiguration() throws -> UpstreamClient.Configuration {
        guard let upstream = config.upstream, let url = UpstreamURL(upstream.url) else {
            throw CLIError("no upstream configured: add \"upstream\": {\"url\": \"https://…\"} to \(source)")
        }
        return UpstreamClient.Configuration(
            baseURL: url.base, username: upstream.username, password: try upstreamPassword(), caFile: upstream.caFile,
            insecure: upstream.insecure, connectTimeout: profile.sync.connectTimeout, stallTimeout: profile.sync.stallTimeout,
            bufferSize: profile.io.bufferSize, threads: syncConcurrency + 2)
    }

    /// Whether a client made with `a` talks to the same registry, with the same credentials
    /// and settings, as one made with `b`.
    private static func same(_ a: UpstreamClient.Configuration, _ b: UpstreamClient.Configuration) -> Bool {
        a.baseURL == b.baseURL && a.username == b.username && a.password == b.password && a.caFile == b.caFile
            && a.insecure == b.insecure && a.connectTimeout == b.connectTimeout && a.stallTimeout == b.stallTimeout
            && a.bufferSize == b.bufferSize && a.threads == b.threads
    }
}
