import CCurl
import Logging
import OCICore
import Synchronization

extension PeerClient {
    /// Says clearly why a peer was refused at the TLS layer. To the peer logic such a peer is
    /// just one that does not answer (it is marked down and the blob comes from another peer
    /// or the WAN), but an operator must learn that its certificate is not the site CA's, or
    /// not for the address it is reached at, rather than read "peer does not answer".
    /// One warning per peer per ``interval``: a pass probes a peer once per blob.
    final class TLSReport: Sendable {
        let logger: Logger
        let caFile: String?
        let interval: Int64
        private let lastReported = Mutex<[String: Int64]>([:])

        init(logger: Logger, caFile: String?, interval: Int64 = 60_000_000_000) {
            self.logger = logger
            self.caFile = caFile
            self.interval = interval
        }

        /// What a failed transfer to `url` (a peer's base URL) says about TLS; nil when it
        /// is no TLS problem (a peer that is down, a cut).
        static func cause(of failure: CurlTransfer.Failure, url: String) -> String? {
            let https = url.lowercased().hasPrefix("https://")
            switch failure.code {
            case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                return "its TLS certificate does not verify (not issued by the site CA, or not for this address)"
            case CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CRL_BADFILE:
                return "the CA bundle for peers cannot be used"
            case CURLE_SSL_CONNECT_ERROR:
                return https ? "the TLS handshake failed (does the peer serve HTTPS, registry.tls?)" : nil
            default:
                return nil
            }
        }

        /// Logs `failure` as a warning when it is a TLS refusal not reported lately for `url`.
        func failed(_ url: String, _ failure: CurlTransfer.Failure) {
            guard let cause = Self.cause(of: failure, url: url) else { return }
            let now = MonotonicClock.now()
            let due = lastReported.withLock { last -> Bool in
                if let previous = last[url], now - previous < interval { return false }
                last[url] = now
                return true
            }
            guard due else { return }
            logger.warning(
                "peer refused over TLS: \(cause); it is skipped, blobs come from other peers or the WAN",
                metadata: ["peer": "\(url)", "caFile": "\(caFile ?? "system CAs")", "error": "\(failure.message)"])
        }
    }
}
