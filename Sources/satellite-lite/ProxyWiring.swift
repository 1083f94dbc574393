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
    /// Nil when `proxy.enabled` is not set.
    ///
    /// Throws a one-line ``CLIError`` when a credential file cannot be read.
    func makePullThrough(store: BlobStore, logger: Logger) throws -> PullThroughProxy? {
        guard config.proxy.enabled else { return nil }
        let upstream = config.upstream != nil ? try makeClient() : nil
        let limiter = upstream?.limiter ?? BandwidthLimiter.shared(bytesPerSecond: bandwidth)
        var mirrors: [String: UpstreamClient] = [:]
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
            mirrors[mirror.registry] = UpstreamClient(
                configuration: .init(
                    baseURL: mirror.url, username: mirror.username, password: password, caFile: mirror.caFile,
                    insecure: mirror.insecure, connectTimeout: profile.sync.connectTimeout, stallTimeout: profile.sync.stallTimeout,
                    bufferSize: profile.io.bufferSize, threads: syncConcurrency + 2),
                limiter: limiter)
        }
        let allow = config.proxy.allow
        let trust = try makeTrustPolicy()
        let quota = quotaPolicy(store: store)
        let roots = gcRoots
        let configuration = PullThroughProxy.Configuration(
            allows: { name in allow.isEmpty || allow.contains { TrustPolicy.glob($0, matches: name) } },
            tagRecheck: config.proxy.tagRecheck,
            transferTimeout: max(10_000_000_000, profile.sync.stallTimeout * 2),
            continueUnwatched: profile.proxy.continueUnwatched,
            makeRoom: { digest, size in
                _ = try quota.makeRoom(store: store, for: [digest: size], roots: roots, logger: logger)
            })
        let names = ([config.upstream.map { $0.url }] + config.proxy.mirrors.map { "\($0.registry)=\($0.url)" }).compactMap { $0 }
        logger.info("pull-through proxy enabled", metadata: ["upstreams": "\(names.joined(separator: ", "))", "allow": "\(allow)"])
        return PullThroughProxy(
            configuration: configuration, store: store, policy: makePublishPolicy(trust, events: nil, logger: logger), upstream: upstream,
            mirrors: mirrors, logger: logger)
    }
}
