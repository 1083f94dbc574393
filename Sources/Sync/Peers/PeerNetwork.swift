import ContentStore
import Logging
import OCICore
import Synchronization

/// The site's peers and the HTTP client that talks to them: one per process, shared by
/// every sync pass (what a peer that is down or lied costs is remembered across passes for a
/// while).
public final class PeerNetwork: Sendable {
    public let peers: PeerSet
    let client: PeerClient
    private let settled = Atomic<Int64>(0)

    /// Discovery started: the first transfers wait until `nanoseconds` passed, long enough
    /// to hear the peers' announcements, instead of going to the WAN alone.
    public func listen(for nanoseconds: Int64) {
        settled.store(MonotonicClock.now() + nanoseconds, ordering: .relaxed)
    }

    /// Waits until discovery had its time (see ``listen(for:)``).
    func settle() async {
        let wait = settled.load(ordering: .relaxed) - MonotonicClock.now()
        if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait)) }
    }

    /// `caFile`: the PEM bundle that verifies `https://` peers (the site's CA; nil: the
    /// system's CAs). `logger`: where a peer refused for its TLS is reported.
    public init(
        peers: PeerSet, connectTimeout: Int64 = 1_500_000_000, stallTimeout: Int64 = 20_000_000_000, bufferSize: Int = 65536,
        threads: Int = 8, accounting: LinkAccounting? = nil, caFile: String? = nil, logger: Logger? = nil
    ) {
        self.peers = peers
        client = PeerClient(
            proof: peers.proof, connectTimeout: connectTimeout, stallTimeout: stallTimeout, bufferSize: bufferSize, threads: threads,
            accounting: accounting, caFile: caFile, logger: logger)
    }

    /// Bytes received from peers so far (LAN).
    public var bytesReceived: Int64 { client.bytesReceived }

    /// The digest the live peers' syncs hold for `repository:tag` (`/peer/v1/tags/`), asked in
    /// parallel; when they disagree (one synced an older update), the digest most of them
    /// hold, ties broken by the digest's text so every satellite picks the same. Nil when
    /// none holds the tag.
    func tagDigest(_ repository: RepositoryName, tag: String) async -> Digest? {
        let candidates = peers.live()
        guard !candidates.isEmpty else { return nil }
        let answers = await withTaskGroup(of: Digest?.self) { group in
            for url in candidates {
                group.addTask { [client] in await client.tagDigest(url, repository: repository, tag: tag) }
            }
            var found: [Digest: Int] = [:]
            for await digest in group {
                if let digest { found[digest, default: 0] += 1 }
            }
            return found
        }
        return answers.max { a, b in a.value != b.value ? a.value < b.value : a.key.description > b.key.description }?.key
    }

    /// What the live peers that are not liars for `digest` say about it, asked in parallel;
    /// a peer that does not answer is marked down, one that answers up.
    func probe(_ digest: Digest, logger: Logger) async -> [PeerClient.Probe] {
        let candidates = peers.live().filter { !peers.isLiar($0, for: digest) }
        guard !candidates.isEmpty else { return [] }
        return await withTaskGroup(of: (String, PeerClient.Probe?).self) { group in
            for url in candidates {
                group.addTask { [client] in (url, await client.probe(url, digest: digest)) }
            }
            var results: [PeerClient.Probe] = []
            for await (url, probe) in group {
                if let probe {
                    peers.markUp(url)
                    results.append(probe)
                } else {
                    logger.info("peer does not answer", metadata: ["peer": "\(url)"])
                    peers.markDown(url)
                }
            }
            return results
        }
    }

    /// Prometheus text for `/metrics`: the peers known and answering, the bytes taken from them.
    public func metricsText() -> String {
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int64) -> String {
            "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        var text = metric("satellite_peers_known", "gauge", "Peers of the site known now (peers.urls and discovered).", Int64(peers.known.count))
        text += metric("satellite_peers_live", "gauge", "Known peers not marked down.", Int64(peers.live().count))
        text += metric(
            "satellite_peer_received_bytes_total", "counter", "Blob bytes this process received from peers (LAN).", client.bytesReceived)
        return text
    }

    public func shutdown() async {
        await client.shutdown()
    }
}
