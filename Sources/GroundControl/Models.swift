import Fleet
import FoundationEssentials
import OCICore
import JSONCoding

/// The JSON errors of the API: `{"message", "code"}` as Harbor Satellite's `AppError`.
public struct APIErrorBody: Codable, Sendable {
    public var message: String
    public var code: Int
}

public struct SatelliteCreateRequest: Codable, Sendable {
    public var name: String
    public var groups: [String]?
    public var configName: String?
    enum CodingKeys: String, CodingKey {
        case name, groups
        case configName = "config_name"
    }
}

public struct TokenResponse: Codable, Sendable {
    public var token: String
}

public struct GroupSyncRequest: Codable, Sendable {
    public var group: String
    public var registry: String?
    public var artifacts: [GroupArtifact]?
}

public struct MembershipRequest: Codable, Sendable {
    public var satellite: String
    public var group: String
}

public struct ConfigAssignRequest: Codable, Sendable {
    public var satellite: String
    public var configName: String
    enum CodingKeys: String, CodingKey {
        case satellite
        case configName = "config_name"
    }
}

public struct LoginRequest: Codable, Sendable {
    public var username: String
    public var password: String
}

public struct LoginResponse: Codable, Sendable {
    public var token: String
    public var expiresAt: String
    enum CodingKeys: String, CodingKey {
        case token
        case expiresAt = "expires_at"
    }
}

public struct UserCreateRequest: Codable, Sendable {
    public var username: String
    public var password: String
    public var role: String?
}

public struct UserView: Codable, Sendable, Equatable {
    public var username: String
    public var role: String
    public var createdAt: String
    enum CodingKeys: String, CodingKey {
        case username, role
        case createdAt = "created_at"
    }
}

public struct GroupView: Codable, Sendable, Equatable {
    public var group: String
    public var registry: String
    public var artifacts: [GroupArtifact]
    public var satellites: [String]
    public var createdAt: String
    public var updatedAt: String
    enum CodingKeys: String, CodingKey {
        case group, registry, artifacts, satellites
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

public struct ConfigView: Codable, Sendable, Equatable {
    public var configName: String
    public var config: JSON
    public var createdAt: String
    public var updatedAt: String
    enum CodingKeys: String, CodingKey {
        case configName = "config_name"
        case config
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }
}

public struct ConfigCreateRequest: Codable, Sendable {
    public var configName: String
    public var config: JSON
    enum CodingKeys: String, CodingKey {
        case configName = "config_name"
        case config
    }
}

/// One satellite as the list and detail routes show it.
public struct SatelliteView: Codable, Sendable, Equatable {
    public var name: String
    public var groups: [String]
    public var configName: String?
    public var robotName: String
    public var createdAt: String
    /// RFC 3339; absent when never seen.
    public var lastSeen: String?
    /// `in_sync`, `drifting`, `stale` or `never_seen`.
    public var state: String
    /// WAN/LAN bytes, window and budget from the newest heartbeat; absent when it had none.
    public var link: LinkUsage?
    enum CodingKeys: String, CodingKey {
        case name, groups, state, link
        case configName = "config_name"
        case robotName = "robot_name"
        case createdAt = "created_at"
        case lastSeen = "last_seen"
    }
}

/// Desired against reported, for `/api/satellites/{name}/status`.
public struct SatelliteStatusView: Codable, Sendable, Equatable {
    public var name: String
    public var state: String
    public var lastSeen: String?
    public var stale: Bool
    public var inSync: Bool
    public var desired: [String]
    public var missing: [String]
    public var unexpected: [String]
    public var heartbeat: HeartbeatView?
    /// WAN/LAN bytes, window and budget parsed from `heartbeat`'s activity; absent when none.
    public var link: LinkUsage?
    enum CodingKeys: String, CodingKey {
        case name, state, stale, desired, missing, unexpected, heartbeat, link
        case lastSeen = "last_seen"
        case inSync = "in_sync"
    }
}

/// One stored heartbeat: every field the satellite sent, plus when it arrived.
public struct HeartbeatView: Codable, Sendable, Equatable {
    public var receivedAt: String
    public var report: Heartbeat
    enum CodingKeys: String, CodingKey {
        case receivedAt = "received_at"
        case report
    }
}

enum Time {
    static func rfc3339(_ seconds: Int64) -> String { UTCTime.rfc3339(seconds) }

    static func rfc3339(milliseconds: Int64) -> String { UTCTime.rfc3339(milliseconds: milliseconds) }
}

extension SatelliteStatusView {
    func view(_ row: FleetRepository.SatelliteRow) -> SatelliteView {
        SatelliteView(
            name: row.name, groups: row.groups, configName: row.configName, robotName: row.robot,
            createdAt: Time.rfc3339(row.createdAt), lastSeen: lastSeen, state: state, link: link)
    }
}
