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
