import SatelliteConfig
import OCICore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Something hooks react to, carrying the values they see as `SATELLITE_*` variables.
///
/// `image-updated` means "a desired tag now points at a new, fully verified manifest": the
/// caller creates one only when a tag's digest actually changes (never for a pass that finds
/// the tag where it was). ``HookRunner/enqueue(_:)`` also drops an `image-updated` whose
/// digest equals its previous digest, or equals the newest one still pending for that tag.
public struct HookEvent: Sendable, Equatable, Codable {
    public typealias Kind = ConfigFile.Event

    public var kind: Kind
    /// Repository path in the local registry (empty for sync-completed, sync-failed, gc-completed).
    public var repository: String
    /// Empty for an image pinned by digest.
    public var tag: String
    public var digest: String
    /// Empty when the tag did not exist before.
    public var previousDigest: String
    /// Free text: the error of a sync-failed, a summary of a gc-completed (`SATELLITE_MESSAGE`).
    public var message: String
    /// Unique id of this event (`SATELLITE_EVENT_ID`): a hook run twice after a crash sees
    /// the same id, so it can tell a repeat from a new event.
    public var id: String
    /// When the event was created, nanoseconds since the Unix epoch.
    public var time: Int64

    public init(
        kind: Kind, repository: String = "", tag: String = "", digest: String = "", previousDigest: String = "",
        message: String = ""
    ) {
        self.kind = kind
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.previousDigest = previousDigest
        self.message = message
        self.id = PosixFile.randomToken()
        self.time = MonotonicClock.wallNow()
    }

    /// `repository:tag`, or `repository@digest` for an image pinned by digest; empty when
    /// the event is not about an image.
    public var image: String {
        if repository.isEmpty { return "" }
        if !tag.isEmpty { return "\(repository):\(tag)" }
        if !digest.isEmpty { return "\(repository)@\(digest)" }
        return repository
    }

    /// The search path every hook gets.
    public static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The complete environment of a hook for this event, as `NAME=value` strings: PATH,
    /// HOME=/ and the SATELLITE_* variables. Nothing of the agent's own environment leaks in.
    ///
    /// - Parameter registry: host:port of the local registry (`SATELLITE_REGISTRY`).
    public func environment(registry: String) -> [String] {
        [
            "PATH=\(Self.path)",
            "HOME=/",
            "SATELLITE_EVENT=\(kind.rawValue)",
            "SATELLITE_EVENT_ID=\(id)",
            "SATELLITE_IMAGE=\(image)",
            "SATELLITE_REPOSITORY=\(repository)",
            "SATELLITE_TAG=\(tag)",
            "SATELLITE_DIGEST=\(digest)",
            "SATELLITE_PREVIOUS_DIGEST=\(previousDigest)",
            "SATELLITE_REGISTRY=\(registry)",
            "SATELLITE_MESSAGE=\(message)",
        ]
    }

    /// Whether `hook` runs for this event: same event name, and its `match` glob (if any)
    /// matches the repository, `repository:tag` or `repository@digest`. `match` is ignored
    /// for events that are not about an image.
    public func triggers(_ hook: ConfigFile.Hook) -> Bool {
        guard hook.on == kind else { return false }
        guard let pattern = hook.match, !repository.isEmpty else { return true }
        var candidates = [repository]
        if !tag.isEmpty { candidates.append("\(repository):\(tag)") }
        if !digest.isEmpty { candidates.append("\(repository)@\(digest)") }
        return candidates.contains { Self.glob(pattern, matches: $0) }
    }

    /// Shell-style glob (fnmatch without flags): `*` and `?` also match `/` and `:`, and
    /// `[...]` is a character class. `factory/*` matches `factory/sensor` and `factory/a/b`.
    public static func glob(_ pattern: String, matches text: String) -> Bool {
        fnmatch(pattern, text, 0) == 0
    }

    // Codable by hand: the event name is stored as its config spelling.
    private enum CodingKeys: String, CodingKey {
        case kind = "event", repository, tag, digest, previousDigest, message, id, time
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let name = try container.decode(String.self, forKey: .kind)
        guard let kind = Kind(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "unknown event \"\(name)\"")
        }
        self.kind = kind
        repository = try container.decode(String.self, forKey: .repository)
        tag = try container.decode(String.self, forKey: .tag)
        digest = try container.decode(String.self, forKey: .digest)
        previousDigest = try container.decode(String.self, forKey: .previousDigest)
        message = try container.decodeIfPresent(String.self, forKey: .message) ?? ""
        id = try container.decode(String.self, forKey: .id)
        time = try container.decode(Int64.self, forKey: .time)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind.rawValue, forKey: .kind)
        try container.encode(repository, forKey: .repository)
        try container.encode(tag, forKey: .tag)
        try container.encode(digest, forKey: .digest)
        try container.encode(previousDigest, forKey: .previousDigest)
        try container.encode(message, forKey: .message)
        try container.encode(id, forKey: .id)
        try container.encode(time, forKey: .time)
    }
}
