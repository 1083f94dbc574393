import ContentStore
import Logging
import OCICore
import SatelliteConfig
import Synchronization
import Sync

/// `peers`: the site secret, the peer set (list and discovery) and the peered content source,
/// built from the settings. The peer network lives as long as the process: every sync pass
/// shares it.
extension Settings {
    /// The proof of the site secret (`peers.secretFile`); nil without peers.
    ///
    /// Throws a one-line ``CLIError`` when the file cannot be read or is empty.
    func peerProof() throws -> PeerProof? {
        guard let file = config.peers.secretFile else { return nil }
        let bytes: [UInt8]
        do {
            bytes = try PosixFile.readAll(path: file, limit: 64 * 1024)
        } catch {
            throw CLIError("cannot read peers.secretFile \(file): \(error)")
        }
        let secret = Array(String(decoding: bytes, as: UTF8.self).trimmed().utf8)
        guard secret.count >= 16 else {
            throw CLIError("peers.secretFile \(file) holds \(secret.count) bytes: a site secret needs at least 16 (e.g. `head -c 32 /dev/urandom | base64`)")
        }
        return PeerProof(secret: secret)
    }

    /// This satellite's registry URL as peers reach it (and discovery announces):
    /// `https://` when the listener serves TLS, which then speaks nothing else.
    var advertisedURL: String {
        if let advertise = config.peers.advertise { return advertise }
        let listen = config.registry.listen
        return "\(config.registry.tls == nil ? "http" : "https")://\(listen.description)"
    }

    /// The CA bundle for `https://` peers (``ConfigFile/peerCAFile``), checked readable now:
    /// curl would otherwise refuse every peer later with an error that names no key.
    ///
    /// Throws a one-line ``CLIError`` naming the key the file came from.
    func peerCAFile() throws -> String? {
        guard let file = config.peerCAFile else { return nil }
        let key = config.peers.caFile == nil ? "registry.tls.caFile (the default of peers.caFile)" : "peers.caFile"
        do {
            let bytes = try PosixFile.readAll(path: file, limit: 4 * 1024 * 1024)
            guard String(decoding: bytes, as: UTF8.self).containsText("-----BEGIN CERTIFICATE-----") else {
                throw CLIError("\(key) \(file) holds no PEM certificate")
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("cannot read \(key) \(file): \(error)")
        }
        return file
    }

    /// The process's peer network, made (and discovery started) on first use.
    func peerNetwork(logger: Logger) throws -> PeerNetwork? {
        guard config.peers.enabled, let proof = try peerProof() else { return nil }
        return try PeerRuntime.shared.withLock { existing -> PeerNetwork in
            if let existing { return existing }
            let peers = PeerSet(selfURL: advertisedURL, urls: config.peers.urls, proof: proof)
            let network = PeerNetwork(
                peers: peers, connectTimeout: min(profile.sync.connectTimeout, 1_500_000_000), bufferSize: profile.io.bufferSize,
                threads: 2 * syncConcurrency + 4, accounting: wanGate.accounting, caFile: try peerCAFile(), logger: logger)
            if config.peers.discover {
                do {
                    let discovery = try PeerDiscovery(
                        peers: peers, port: config.peers.discoveryPort, address: config.peers.discoveryAddress, logger: logger)
                    discovery.start()
                    network.listen(for: discovery.interval + 500_000_000)
                    PeerRuntime.discovery.withLock { $0 = discovery }
                } catch {
                    throw CLIError("peers.discover: cannot listen on UDP port \(config.peers.discoveryPort): \(error)")
                }
            }
            existing = network
            return network
        }
    }

    /// The upstream, asked after the site's peers when there are any.
    func peeredContent(_ client: UpstreamClient, store: BlobStore, logger: Logger) throws -> any ContentSource {
        guard let network = try peerNetwork(logger: logger) else { return client }
        return PeeredSource(upstream: client, network: network, store: store, takeover: config.peers.takeover, gate: client.gate, logger: logger)
    }
}

/// The process's one peer network and discovery.
enum PeerRuntime {
    static let shared = Mutex<PeerNetwork?>(nil)
    static let discovery = Mutex<PeerDiscovery?>(nil)
}
