import ContentStore
import OCICore

extension PeerClient {
    /// Asks a peer whether this satellite (`selfURL`, as its peers reach it) may fetch
    /// `digest` from its upstream (`POST /peer/v1/claims/<digest>`, BlobStore's claims). Nil
    /// when the peer does not answer or does not know claims (an older version: it stands in
    /// nobody's way).
    func claim(_ url: String, digest: Digest, from selfURL: String) async -> BlobStore.ClaimAnswer? {
        let path = "\(PeerProof.claimPathPrefix)\(digest)"
        var options = options(method: "POST", path: path)
        options.headers.append("Satellite-Peer: \(selfURL)")
        options.body = []
        options.stallTimeout = min(stallTimeout, 3_000_000_000)
        let finalOptions = options
        let response = try? await blocking(url) { cancel in
            try CurlTransfer.perform(url: url + path, options: finalOptions, cancelled: cancel, onBody: { _ in })
        }
        guard let response, response.status == 200 else { return nil }
        return response.header("satellite-claim").flatMap { BlobStore.ClaimAnswer(rawValue: $0) }
    }
}

extension PeerNetwork {
    /// Whether this satellite fetches `digest` from its upstream for the site: it marks
    /// itself deciding in `store` (which holds the download, with the follow marker set),
    /// asks every live peer (BlobStore's claims) and settles over the peers deciding too,
    /// seen in their answers or recorded when they asked it: the first of those in rank wins,
    /// the others follow it. A peer that holds the blob, fetches it or won a claim makes this
    /// one yield. A peer that does not answer, lied about the blob or is in `refused` stands in
    /// nobody's way. Used by the sync (``PeeredSource``) and the pull-through proxy alike.
    func claim(_ digest: Digest, store: BlobStore, excluding refused: Set<String>) async -> Bool {
        store.beginClaim(digest)
        // A liar or a peer that refused the blob is no source to yield to.
        let candidates = peers.live().filter { !refused.contains($0) && !peers.isLiar($0, for: digest) }
        let answers = await withTaskGroup(of: (String, BlobStore.ClaimAnswer?).self) { group in
            for url in candidates {
                group.addTask { [client, peers] in (url, await client.claim(url, digest: digest, from: peers.selfURL)) }
            }
            var answers: [(String, BlobStore.ClaimAnswer?)] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        let yielded = answers.contains { $0.1 == .holding }
        let deciding = answers.filter { $0.1 == .deciding }.map(\.0)
        return store.settleClaim(digest) { askers in
            guard !yielded else { return false }
            let contenders = Set(deciding + askers.map(PeerSet.normalize) + [peers.selfURL])
            return PeerSet.rank(Array(contenders), for: digest).first == peers.selfURL
        }
    }
}
