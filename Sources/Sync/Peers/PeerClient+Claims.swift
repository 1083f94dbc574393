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
