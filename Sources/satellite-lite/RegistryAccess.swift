import ContentStore
import Logging
import OCICore
import SatelliteConfig
import TinyRegistry
import Synchronization
import Trust

/// Who may change the registry (`registry.push`, `registry.users`, the desired tags) and
/// which signatures a tag needs (`trust.policies`), built from the settings.
extension Settings {
    /// The registry API over `store` with the push authorisation and the protected tags.
    ///
    /// Throws a one-line ``CLIError`` when the htpasswd file cannot be read or holds an
    /// unsupported entry.
    func makeRegistryAPI(store: BlobStore, pullThrough: (any PullThrough)? = nil) throws -> RegistryAPI {
        var users: Htpasswd?
        if config.registry.push == .authenticated, let path = config.registry.users {
            do {
                users = try Htpasswd(path: path)
            } catch {
                throw CLIError("registry.users: \(error)")
            }
        }
        let protected = ProtectedTags(store: store)
        protected.replace(with: desiredTags)
        return RegistryAPI(
            store: store, authorizer: PushAuthorizer(mode: PushAuthorizer.Mode(rawValue: config.registry.push.rawValue) ?? .loopback, users: users), protectedTags: protected, pullThrough: pullThrough,
            peerProof: try peerProof())
    }

    /// SIGHUP for the listener: re-reads the config file, then applies its idle and header
    /// timeouts and reloads the `registry.tls` pair and the htpasswd file it names, at once
    /// (not after a running sync pass). A file that does not load is logged and the one in
    /// use is kept; open connections are untouched.
    static func reloadListenerFiles(configPath: String?, server: RegistryServer, logger: Logger) {
        let settings: Settings
        do {
            settings = try Settings.load(configPath: configPath)
        } catch {
            logger.error("reload: the config does not load; keeping the certificate and users in use", metadata: ["error": "\(error)"])
            return
        }
        let timeouts = settings.connectionTimeouts
        if timeouts != server.currentTimeouts {
            server.updateTimeouts(timeouts)
            logger.info(
                "connection timeouts reloaded",
                metadata: ["idleTimeout": "\(timeouts.idle.map { "\($0)" } ?? "off")", "headerTimeout": "\(timeouts.header.map { "\($0)" } ?? "off")"])
        }
        switch (settings.config.registry.tls, server.configuration.tls) {
        case (let files?, let certificates?):
            do {
                let summary = try certificates.reload(certFile: files.certFile, keyFile: files.keyFile)
                logger.info("TLS certificate reloaded", metadata: ["certificate": "\(summary)"])
            } catch {
                logger.error(
                    "TLS certificate not reloaded; keeping the one in use",
                    metadata: ["error": "\(error)", "certificate": "\(certificates.summary)"])
            }
        case (nil, nil):
            break
        default:
            logger.warning("turning registry.tls on or off takes effect after a restart")
        }
        if server.api.authorizer.mode == .authenticated, settings.config.registry.push == .authenticated,
            let path = settings.config.registry.users
        {
            do {
                server.api.authorizer.replaceUsers(try Htpasswd(path: path))
                logger.info("htpasswd users reloaded", metadata: ["users": "\(path)"])
            } catch {
                logger.error("htpasswd users not reloaded; keeping the ones in use", metadata: ["error": "\(error)"])
            }
        } else if settings.config.registry.push.rawValue != server.api.authorizer.mode.rawValue {
            logger.warning("registry.push changes take effect after a restart")
        }
    }

    /// The tags the config names directly (`state.images` with a tag); those of a state
    /// artifact or file are protected once the sync has recorded them.
    var desiredTags: [(repository: String, tag: String)] {
        config.state.images.compactMap { image in image.tag.map { (image.repository.value, $0) } }
    }

    /// The publish step's policy: `trust.policies`, each refusal (and each `warn`) logged,
    /// counted for /metrics and raised as a `trust-rejected` hook event.
    func makePublishPolicy(_ trust: TrustPolicy, events: (any SyncEventSink)?, logger: Logger) -> TrustPublishPolicy {
        TrustPublishPolicy(policy: trust) { image, previous, error, action in
            TrustCounters.shared.withLock {
                if action == .require { $0.rejected += 1 } else { $0.warned += 1 }
            }
            logger.warning(
                action == .require ? "image refused by the trust policy" : "unsigned image published (trust action warn)",
                metadata: ["repository": "\(image.repository)", "digest": "\(image.top.digest)", "reason": "\(error)"])
            try? events?.record(
                SyncEvent(
                    kind: .trustRejected, repository: image.repository.value, tag: image.tags.first ?? "",
                    digest: image.top.digest.description, previousDigest: previous?.description ?? "",
                    message: "\(action == .require ? "refused" : "published anyway (warn)"): \(error)"))
        }
    }

    /// The trust policy with every key file read and checked.
    ///
    /// Throws a one-line ``CLIError`` naming a key file that is missing or not P-256.
    func makeTrustPolicy() throws -> TrustPolicy {
        var rules: [TrustPolicy.Rule] = []
        for policy in config.trust.policies {
            var keys: [PublicKey] = []
            for path in policy.keys {
                let bytes: [UInt8]
                do {
                    bytes = try PosixFile.readAll(path: path, limit: 64 * 1024)
                } catch {
                    throw CLIError("trust.policies: cannot read the key \(path): \(error)")
                }
                do {
                    keys.append(try PublicKey(pem: bytes, name: path))
                } catch {
                    throw CLIError("trust.policies: \(error)")
                }
            }
            rules.append(.init(match: policy.match, keys: keys, action: policy.action == "warn" ? .warn : .require))
        }
        return TrustPolicy(rules: rules)
    }
}

/// Trust refusals of this process, for /metrics (engines are made per pass; the count is not).
enum TrustCounters {
    static let shared = Mutex<(rejected: Int64, warned: Int64)>((0, 0))
}
