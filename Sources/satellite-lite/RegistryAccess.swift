import ContentStore
import OCICore
import SatelliteConfig
import TinyRegistry
import Trust

/// Who may change the registry (`registry.push`, `registry.users`, the desired tags) and
/// which signatures a tag needs (`trust.policies`), built from the settings.
extension Settings {
    /// The registry API over `store` with the push authorisation and the protected tags.
    ///
    /// Throws a one-line ``CLIError`` when the htpasswd file cannot be read or holds an
    /// unsupported entry.
    func makeRegistryAPI(store: BlobStore) throws -> RegistryAPI {
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
            store: store, authorizer: PushAuthorizer(mode: PushAuthorizer.Mode(rawValue: config.registry.push.rawValue) ?? .loopback, users: users), protectedTags: protected)
    }

    /// The tags the config names directly (`state.images` with a tag); those of a state
    /// artifact or file are protected once the sync has recorded them.
    var desiredTags: [(repository: String, tag: String)] {
        config.state.images.compactMap { image in image.tag.map { (image.repository.value, $0) } }
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
