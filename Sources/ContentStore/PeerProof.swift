import OCICore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The site secret's proofs between satellites of one site (`peers.secretFile`).
///
/// The secret itself never crosses the wire. A peer request carries
/// `Authorization: SatellitePeer ts=<unix seconds>,nonce=<random hex>,mac=<hex>` where `mac` is
/// HMAC-SHA256(secret, "<METHOD> <path> <ts> <nonce>"): valid for one request path, within
/// ``window`` seconds of the server's clock, and once (the server remembers the nonces it
/// accepted inside the window). A LAN announcement (discovery) carries the same kind of MAC
/// over its fields. Someone on the LAN who sniffs a request learns which digests a peer
/// fetched, never the secret; a replay outside the window or of a used nonce is refused.
public final class PeerProof: Sendable {
    public static let scheme = "SatellitePeer"
    /// The peer endpoint: `<prefix><digest>` on a satellite's registry listener.
    public static let blobPathPrefix = "/peer/v1/blobs/"
    /// `<prefix><digest>`: a manifest or index the satellite holds, verified, any repository.
    public static let manifestPathPrefix = "/peer/v1/manifests/"
    /// `<prefix><repository>/<tag>`: the digest of a tag the satellite's sync manages.
    public static let tagPathPrefix = "/peer/v1/tags/"
    /// `<prefix><digest>` (POST): a satellite about to fetch the blob from its upstream asks
    /// whether another fetches it or decides to (BlobStore's claims).
    public static let claimPathPrefix = "/peer/v1/claims/"
    /// How far a proof's timestamp may be from this machine's clock (seconds).
    public static let window: Int64 = 120

    private let key: [UInt8]
    private let seenNonces = Mutex<[String: Int64]>([:])

    /// `secret`: the secret file's content (surrounding whitespace is not part of it).
    public init(secret: [UInt8]) {
        key = secret
    }

    public static func now() -> Int64 { Int64(time(nil)) }

    /// The `Authorization` header value for a request.
    public func authorization(method: String, path: String, now: Int64 = PeerProof.now()) -> String {
        let nonce = PosixFile.randomToken()
        let mac = HMAC.sha256Hex(key: key, message: "\(method) \(path) \(now) \(nonce)")
        return "\(Self.scheme) ts=\(now),nonce=\(nonce),mac=\(mac)"
    }

    /// Whether an `Authorization` header value proves the secret for this request.
    public func verify(authorization value: String, method: String, path: String, now: Int64 = PeerProof.now()) -> Bool {
        let prefix = "\(Self.scheme) "
        guard value.hasPrefix(prefix) else { return false }
        var fields: [String: String] = [:]
        for part in value.dropFirst(prefix.count).split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return false }
            fields[pair[0].trimmed()] = pair[1].trimmed()
        }
        guard let tsText = fields["ts"], let ts = Int64(tsText), let nonce = fields["nonce"], let mac = fields["mac"],
            nonce.count >= 8, nonce.count <= 64, abs(now - ts) <= Self.window
        else { return false }
        let expected = HMAC.sha256Hex(key: key, message: "\(method) \(path) \(ts) \(nonce)")
        guard HMAC.constantTimeEqual(Array(expected.utf8), Array(mac.utf8)) else { return false }
        return seenNonces.withLock { seen in
            if seen.count > 4096 { seen = seen.filter { abs(now - $0.value) <= Self.window } }
            guard seen[nonce] == nil else { return false }
            seen[nonce] = ts
            return true
        }
    }

    // MARK: Announcements

    static let announcementTag = "SATPEER1"

    /// A discovery datagram: `SATPEER1 <id> <url> <ts> <nonce> <mac>`.
    public func announcement(id: String, url: String, now: Int64 = PeerProof.now()) -> [UInt8] {
        let nonce = PosixFile.randomToken()
        let body = "\(Self.announcementTag) \(id) \(url) \(now) \(nonce)"
        return Array("\(body) \(HMAC.sha256Hex(key: key, message: body))".utf8)
    }

    /// The peer an announcement names, when its MAC proves the secret and its timestamp is
    /// inside the window; nil for anything else.
    public func parseAnnouncement(_ bytes: [UInt8], now: Int64 = PeerProof.now()) -> (id: String, url: String)? {
        guard bytes.count <= 1024 else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[0] == Self.announcementTag, let ts = Int64(parts[3]), abs(now - ts) <= Self.window,
            parts[2].hasPrefix("http://") || parts[2].hasPrefix("https://")
        else { return nil }
        let body = parts[0..<5].joined(separator: " ")
        let expected = HMAC.sha256Hex(key: key, message: body)
        guard HMAC.constantTimeEqual(Array(expected.utf8), Array(parts[5].utf8)) else { return nil }
        return (parts[1], parts[2])
    }
}
