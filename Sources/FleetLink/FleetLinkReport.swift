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
