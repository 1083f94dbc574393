import Fleet
import JSONCoding
import TinyRegistry

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The fleet link's files in the store (`<storage.path>/fleet/`):
///
/// ```
/// fleet/link.json     the ZTR answer: name, registry URL and credentials, state reference (0600)
/// fleet/config.json   the last good remote config (0600: it may hold hooks)
/// fleet/status.json   applied digests, last heartbeat, refused configs (no secrets)
/// ```
public struct FleetFiles: Sendable {
    public let folder: String

    public init(storeRoot: String) {
        folder = "\(storeRoot)/fleet"
    }

    public var link: String { "\(folder)/link.json" }
    public var config: String { "\(folder)/config.json" }
    public var status: String { "\(folder)/status.json" }

    /// Writes `bytes` to `path` atomically and durably with mode 0600: a temp file created
    /// 0600 (never readable by others, not even for an instant), fsync'ed, renamed over the
    /// target, the folder fsync'ed. A crash leaves the old file or the new one, never half.
    ///
    /// Throws ``PosixError``.
    public static func writePrivate(_ path: String, _ bytes: [UInt8]) throws {
        guard let slash = path.lastIndex(of: "/") else { throw PosixError("write", path: path, code: EINVAL) }
        let directory = String(path[..<slash])
        try PosixFile.makeDirectories(directory, mode: 0o700)
        let temp = "\(directory)/.tmp-\(PosixFile.randomToken())"
        let fd = try PosixFile.open(temp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            // The mode given to open is masked by the umask; 0600 is what we want whatever it is.
            guard fchmod(fd, 0o600) == 0 else { throw PosixError("chmod", path: temp) }
            try bytes.withUnsafeBytes { try PosixFile.pwriteAll(fd, $0, at: 0, path: temp) }
            try PosixFile.fsync(fd, path: temp)
            PosixFile.close(fd)
            try PosixFile.rename(temp, path)
        } catch {
            PosixFile.close(fd)
            try? PosixFile.unlink(temp)
            throw error
        }
        try PosixFile.fsyncDirectory(directory)
    }

    /// Reads and decodes a JSON file; nil when it does not exist.
    ///
    /// Throws when it exists but cannot be read or decoded.
    static func read<T: Decodable>(_ type: T.Type, _ path: String) throws -> T? {
        let bytes: [UInt8]
        do {
            bytes = try PosixFile.readAll(path: path, limit: 4 << 20)
        } catch let error as PosixError where error.isNotFound {
            return nil
        }
        return try JSONCoder.decode(T.self, from: bytes)
    }
}

/// What onboarding got from Ground Control, kept in `fleet/link.json`.
public struct LinkRecord: Codable, Sendable, Equatable {
    /// Ground Control's URL this satellite onboarded with.
    public var groundControl: String
    /// The satellite's name (from its state reference).
    public var name: String
    /// `<registry>/satellite/satellite-state/<name>/state:latest`.
    public var state: String
    public var registry: RegistryCredentials
    /// Unix seconds.
    public var onboardedAt: Int64
    /// Unix seconds of the last credential refresh.
    public var refreshedAt: Int64?

    public init(groundControl: String, name: String, state: String, registry: RegistryCredentials, onboardedAt: Int64) {
        self.groundControl = groundControl
        self.name = name
        self.state = state
        self.registry = registry
        self.onboardedAt = onboardedAt
    }

    /// The central registry's base URL with a scheme (Harbor answers with one; a bare
    /// host gets https).
    public var registryURL: String {
        var url = registry.url
        while url.hasSuffix("/") { url.removeLast() }
        let lower = url.lowercased()
        return lower.hasPrefix("http://") || lower.hasPrefix("https://") ? url : "https://\(url)"
    }

    /// The state artifact as a repository path in that registry
    /// (`satellite/satellite-state/<name>/state:latest`).
    public var stateArtifact: String {
        var text = state
        for scheme in ["https://", "http://"] where text.lowercased().hasPrefix(scheme) { text = String(text.dropFirst(scheme.count)) }
        let marker = "\(FleetNames.project)/satellite-state/"
        var index = text.startIndex
        while index < text.endIndex {
            if text[index...].hasPrefix(marker) { return String(text[index...]) }
            index = text.index(after: index)
        }
        return text
    }
}

/// The link's non-secret state, kept in `fleet/status.json` for `status` and restarts.
public struct LinkStatus: Codable, Sendable, Equatable {
    public var appliedStateDigest: String = ""
    public var appliedConfigDigest: String = ""
    /// The config-state reference the last satellite state named.
    public var configReference: String = ""
    public var lastSyncDurationMs: Int64 = 0
    /// One line about the last pass.
    public var lastPass: String = ""
    /// Unix seconds of the last heartbeat attempt and of the last one Ground Control took.
    public var lastHeartbeatAttempt: Int64?
    public var lastHeartbeatOK: Int64?
    /// "ok", or why the last one failed.
    public var lastHeartbeatResult: String = ""
    /// Heartbeats that failed in a row (reset by a success).
    public var failuresInRow: Int = 0
    /// Unix seconds since which Ground Control has not been reached (nil: it was).
    public var unreachableSince: Int64?
    public var heartbeatsSent: Int64 = 0
    public var heartbeatsFailed: Int64 = 0
    public var credentialRefreshes: Int64 = 0
    /// The last remote config refused, and why (reported in the next heartbeat).
    public var refusedConfigDigest: String = ""
    public var refusedConfigReason: String = ""
    /// Abnormal events not yet reported in a heartbeat.
    public var pendingNotes: [String] = []

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        appliedStateDigest = try c.decodeIfPresent(String.self, forKey: .appliedStateDigest) ?? ""
        appliedConfigDigest = try c.decodeIfPresent(String.self, forKey: .appliedConfigDigest) ?? ""
        configReference = try c.decodeIfPresent(String.self, forKey: .configReference) ?? ""
        lastSyncDurationMs = try c.decodeIfPresent(Int64.self, forKey: .lastSyncDurationMs) ?? 0
        lastPass = try c.decodeIfPresent(String.self, forKey: .lastPass) ?? ""
        lastHeartbeatAttempt = try c.decodeIfPresent(Int64.self, forKey: .lastHeartbeatAttempt)
        lastHeartbeatOK = try c.decodeIfPresent(Int64.self, forKey: .lastHeartbeatOK)
        lastHeartbeatResult = try c.decodeIfPresent(String.self, forKey: .lastHeartbeatResult) ?? ""
        failuresInRow = try c.decodeIfPresent(Int.self, forKey: .failuresInRow) ?? 0
        unreachableSince = try c.decodeIfPresent(Int64.self, forKey: .unreachableSince)
        heartbeatsSent = try c.decodeIfPresent(Int64.self, forKey: .heartbeatsSent) ?? 0
        heartbeatsFailed = try c.decodeIfPresent(Int64.self, forKey: .heartbeatsFailed) ?? 0
        credentialRefreshes = try c.decodeIfPresent(Int64.self, forKey: .credentialRefreshes) ?? 0
        refusedConfigDigest = try c.decodeIfPresent(String.self, forKey: .refusedConfigDigest) ?? ""
        refusedConfigReason = try c.decodeIfPresent(String.self, forKey: .refusedConfigReason) ?? ""
        pendingNotes = try c.decodeIfPresent([String].self, forKey: .pendingNotes) ?? []
    }
}

/// The last good remote config, kept in `fleet/config.json` (a real rollback: an invalid
/// new one never replaces it, and it survives restarts).
public struct AppliedConfig: Codable, Sendable, Equatable {
    /// Manifest digest of the config-state artifact.
    public var digest: String
    /// The config-state document as read (its `artifacts.json`).
    public var document: JSON

    public init(digest: String, document: JSON) {
        self.digest = digest
        self.document = document
    }
}

/// Unix time in seconds.
func unixNow() -> Int64 { Int64(time(nil)) }

/// What `satellite-lite status` shows of the fleet link: no token, no credential.
public struct FleetLinkReport: Encodable, Sendable {
    public var groundControl: String
    public var onboarded: Bool
    public var name: String?
    public var registry: String?
    public var onboardedAt: Int64?
    public var credentialsRefreshedAt: Int64?
    public var lastHeartbeat: Int64?
    public var lastHeartbeatOK: Int64?
    public var lastHeartbeatResult: String
    public var unreachableSince: Int64?
    public var heartbeatsSent: Int64
    public var heartbeatsFailed: Int64
    public var appliedStateDigest: String
    public var appliedConfigDigest: String
    public var refusedConfigDigest: String?
    public var refusedConfigReason: String?

    /// Reads the link's files in the store at `storeRoot`.
    public static func read(storeRoot: String, groundControl: String) -> FleetLinkReport {
        let files = FleetFiles(storeRoot: storeRoot)
        let record = try? FleetFiles.read(LinkRecord.self, files.link)
        let status = (try? FleetFiles.read(LinkStatus.self, files.status)) ?? LinkStatus()
        return FleetLinkReport(
            groundControl: record?.groundControl ?? groundControl, onboarded: record != nil, name: record?.name,
            registry: record?.registryURL, onboardedAt: record?.onboardedAt, credentialsRefreshedAt: record?.refreshedAt,
            lastHeartbeat: status.lastHeartbeatAttempt, lastHeartbeatOK: status.lastHeartbeatOK,
            lastHeartbeatResult: status.lastHeartbeatResult, unreachableSince: status.unreachableSince,
            heartbeatsSent: status.heartbeatsSent, heartbeatsFailed: status.heartbeatsFailed,
            appliedStateDigest: status.appliedStateDigest, appliedConfigDigest: status.appliedConfigDigest,
            refusedConfigDigest: status.refusedConfigDigest.isEmpty ? nil : status.refusedConfigDigest,
            refusedConfigReason: status.refusedConfigReason.isEmpty ? nil : status.refusedConfigReason)
    }
}
