import ContentStore
import OCICore
import Synchronization

/// The other satellites of the site this one may fetch from: `peers.urls` and what discovery
/// heard, minus peers that are down (skipped for ``downPause`` after one failed connect, so a
/// dead peer costs one short timeout per pass) and peers caught lying about a blob (skipped
/// for that blob until ``liarPause`` passed).
///
/// Peers are named by the URL of their registry listener; `selfURL` is this satellite's own
/// (as its peers reach it): every satellite ranks the same URLs the same way (rendezvous
/// hashing), which is how they agree on who fetches a blob from the WAN.
public final class PeerSet: Sendable {
    public let selfURL: String
    public let proof: PeerProof
    /// How long a discovered peer stays without a new announcement (nanoseconds).
    public let discoveryExpiry: Int64
    public let downPause: Int64
    public let liarPause: Int64

    private struct State {
        var configured: [String]
        /// Discovered URL -> when it was last heard (monotonic ns).
        var discovered: [String: Int64] = [:]
        var downUntil: [String: Int64] = [:]
        var liars: [Digest: [String: Int64]] = [:]
    }

    private let state: Mutex<State>

    public init(
        selfURL: String, urls: [String], proof: PeerProof, discoveryExpiry: Int64 = 15_000_000_000,
        downPause: Int64 = 60_000_000_000, liarPause: Int64 = 30 * 60_000_000_000
    ) {
        self.selfURL = Self.normalize(selfURL)
        self.proof = proof
        self.discoveryExpiry = discoveryExpiry
        self.downPause = downPause
        self.liarPause = liarPause
        let configured = urls.map(Self.normalize).filter { $0 != Self.normalize(selfURL) }
        state = Mutex(State(configured: Array(Set(configured)).sorted()))
    }

    static func normalize(_ url: String) -> String {
        var text = url
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// Every known peer (configured and discovered), down or not.
    public var known: [String] {
        let now = MonotonicClock.now()
        return state.withLock { state in
            Array(Set(state.configured).union(state.discovered.filter { now - $0.value <= discoveryExpiry }.keys)).sorted()
        }
    }

    /// The peers to ask now: known and not down.
    public func live() -> [String] {
        let now = MonotonicClock.now()
        let all = known
        return state.withLock { state in all.filter { (state.downUntil[$0] ?? 0) <= now } }
    }

    /// A peer did not answer (connect failure or timeout): skip it for a while.
    public func markDown(_ url: String) {
        let until = MonotonicClock.now() + downPause
        state.withLock { $0.downUntil[url] = until }
    }

    /// A peer answered again.
    public func markUp(_ url: String) {
        _ = state.withLock { $0.downUntil.removeValue(forKey: url) }
    }

    /// A peer's bytes of `digest` did not hash to it.
    public func markLiar(_ url: String, for digest: Digest) {
        let until = MonotonicClock.now() + liarPause
        state.withLock { $0.liars[digest, default: [:]][url] = until }
    }

    public func isLiar(_ url: String, for digest: Digest) -> Bool {
        let now = MonotonicClock.now()
        return state.withLock { ($0.liars[digest]?[url] ?? 0) > now }
    }

    /// Discovery heard `url` announce itself.
    public func heard(_ url: String) {
        let url = Self.normalize(url)
        guard url != selfURL else { return }
        let now = MonotonicClock.now()
        state.withLock { state in
            if state.discovered[url] == nil { state.downUntil[url] = nil }
            state.discovered[url] = now
        }
    }

    /// `urls` (and this satellite) ordered by rendezvous hashing for `digest`: the first is
    /// the one that fetches the blob from the WAN, the next takes over when it does not.
    public static func rank(_ urls: [String], for digest: Digest) -> [String] {
        urls.map { url -> (String, UInt64) in
            let bytes = ContentHasher.digest(of: Array("\(url) \(digest)".utf8)).rawBytes
            let score = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return (url, score)
        }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.map(\.0)
    }
}
