import FoundationEssentials
import OCICore
import Hummingbird
import JSONCoding


/// Satellites' registry credentials as Harbor robot accounts (`registry.kind = harbor`),
/// through Harbor's API v2.0 exactly as Harbor Satellite's Ground Control uses it
/// (container-registry/harbor-satellite internal/groundcontrol/harbor/{robot,project}.go and
/// utils/helper.go; request and answer shapes from goharbor/harbor api/v2.0/swagger.yaml):
///
/// - the public project `satellite` holds the state artifacts: `HEAD /projects?project_name=`,
///   `POST /projects` when missing;
/// - one system-level robot per satellite, `POST /robots`, named after the satellite, with
///   `read artifact`, `read repository` and `pull repository` on each project of its groups'
///   images and on `satellite` (`GenRobotPerms`);
/// - a membership or group change re-scopes it: `GET /robots/{id}`, then `PUT` with the new
///   permissions (`UpdateRobotProjects`);
/// - ZTR and refresh rotate its secret: `PATCH /robots/{id}` with an empty secret, Harbor
///   makes one up (`RefreshSec`), then `GET /robots/{id}` for the expiry;
/// - deleting the satellite deletes the robot: `DELETE /robots/{id}`.
///
/// Authenticated with `registry.username` and the password in `registry.passwordFile`.
public struct HarborRobots: Sendable {
    let apiBase: String
    let authorization: String
    /// Robot lifetime in days (Harbor's `duration`; Harbor Satellite's ROBOT_DURATION_DAYS).
    let durationDays: Int64

    /// The project holding the state artifacts (Harbor Satellite's name).
    public static let stateProject = "satellite"
    static let description = "managed by ground-control should not edit"

    public init(config: GroundControlConfig) {
        var base = config.registry.url
        if !base.hasPrefix("http://") && !base.hasPrefix("https://") { base = "https://" + base }
        while base.hasSuffix("/") { base.removeLast() }
        apiBase = base + "/api/v2.0"
        authorization = "Basic " + Data("\(config.registry.username):\(config.registryPassword)".utf8).base64EncodedString()
        durationDays = max(1, (config.credentialLifetime + 86_399) / 86_400)
    }

    // MARK: Harbor's models (swagger definitions RobotCreate, RobotCreated, Robot, RobotSec, ProjectReq)

    struct Access: Codable, Sendable, Equatable {
        var resource: String
        var action: String
        var effect: String?
    }

    struct Permission: Codable, Sendable, Equatable {
        var kind: String
        var namespace: String
        var access: [Access]
    }

    struct RobotCreate: Codable, Sendable {
        var name: String
        var description: String
        var disable: Bool
        var duration: Int64
        var level: String
        var permissions: [Permission]
    }

    public struct RobotCreated: Codable, Sendable {
        public var id: Int64
        public var name: String
        public var secret: String
        public var expiresAt: Int64?
        enum CodingKeys: String, CodingKey {
            case id, name, secret
            case expiresAt = "expires_at"
        }
    }

    /// Harbor's `Robot`: read whole and written back whole, as the Go client does.
    struct Robot: Codable, Sendable {
        var id: Int64?
        var name: String?
        var description: String?
        var secret: String?
        var level: String?
        var duration: Int64?
        var editable: Bool?
        var disable: Bool?
        var expiresAt: Int64?
        var permissions: [Permission]?
        var creatorType: String?
        var creatorRef: Int64?
        var creationTime: String?
        var updateTime: String?
        enum CodingKeys: String, CodingKey {
            case id, name, description, secret, level, duration, editable, disable, permissions
            case expiresAt = "expires_at"
            case creatorType = "creator_type"
            case creatorRef = "creator_ref"
            case creationTime = "creation_time"
            case updateTime = "update_time"
        }
    }

    struct RobotSec: Codable, Sendable {
        var secret: String?
    }

    struct ProjectReq: Codable, Sendable {
        var projectName: String
        var `public`: Bool
        var storageLimit: Int64
        enum CodingKeys: String, CodingKey {
            case projectName = "project_name"
            case `public`
            case storageLimit = "storage_limit"
        }
    }

    /// Harbor Satellite's `GenRobotPerms`: read artifacts, read and pull repositories, per project.
    static func permissions(projects: [String]) -> [Permission] {
        let access = [
            Access(resource: "artifact", action: "read"), Access(resource: "repository", action: "read"),
            Access(resource: "repository", action: "pull"),
        ]
        return projects.map { Permission(kind: "project", namespace: $0, access: access) }
    }

    // MARK: calls

    /// Creates the public `satellite` project when Harbor has none.
    public func ensureStateProject() async throws {
        let name = Self.stateProject
        let status = try await send("HEAD", "/projects?project_name=\(name)", expect: [200, 404]).status
        guard status == 404 else { return }
        let body = try JSONCoder.encode(ProjectReq(projectName: name, public: true, storageLimit: -1))
        // 409: another replica created it meanwhile.
        try await send("POST", "/projects", body: body, expect: [201, 409])
    }

    /// Whether Harbor has a robot of this name (the name without Harbor's `robot$` prefix).
    public func robotExists(named name: String) async throws -> Bool {
        let query = PercentEncoding.encode("name=\(name)")
        let (_, data) = try await send("GET", "/robots?q=\(query)", expect: [200])
        guard case .array(let robots) = try JSON.parse(data) else { throw HarborError("GET /robots: not a JSON array") }
        return !robots.isEmpty
    }

    /// A system-level robot for `name` with pull on `projects`.
    public func createRobot(named name: String, projects: [String]) async throws -> RobotCreated {
        let body = try JSONCoder.encode(
            RobotCreate(
                name: name, description: Self.description, disable: false, duration: durationDays, level: "system",
                permissions: Self.permissions(projects: projects)))
        let (_, data) = try await send("POST", "/robots", body: body, expect: [201])
        do { return try JSONCoder.decode(RobotCreated.self, from: data) } catch {
            throw HarborError("POST /robots: unexpected answer (\(error))")
        }
    }

    func robot(id: Int64) async throws -> Robot {
        let (_, data) = try await send("GET", "/robots/\(id)", expect: [200])
        do { return try JSONCoder.decode(Robot.self, from: data) } catch {
            throw HarborError("GET /robots/\(id): unexpected answer (\(error))")
        }
    }

    /// Re-scopes the robot to `projects` (Harbor Satellite's `UpdateRobotProjects`).
    public func updateProjects(robotID: Int64, projects: [String]) async throws {
        var robot = try await robot(id: robotID)
        robot.permissions = Self.permissions(projects: projects)
        try await send("PUT", "/robots/\(robotID)", body: try JSONCoder.encode(robot), expect: [200])
    }

    /// Lengthens the robot's life when it expires within `window` seconds: Harbor counts a
    /// duration from the robot's creation, so the new duration is its age plus one lifetime.
    /// (Harbor Satellite only rotates the secret, and its robots die after ROBOT_DURATION_DAYS.)
    public func extendIfExpiring(robotID: Int64, now: Int64, window: Int64) async throws {
        var robot = try await robot(id: robotID)
        guard let expires = robot.expiresAt, expires > 0, expires - now < window, let duration = robot.duration,
            duration > 0
        else { return }
        let created = expires - duration * 86_400
        robot.duration = (now - created + 86_399) / 86_400 + durationDays
        try await send("PUT", "/robots/\(robotID)", body: try JSONCoder.encode(robot), expect: [200])
    }

    /// A new secret made up by Harbor, and the robot's expiry (Unix seconds; -1: never).
    public func refreshSecret(robotID: Int64) async throws -> (secret: String, expiresAt: Int64) {
        let (_, data) = try await send("PATCH", "/robots/\(robotID)", body: try JSONCoder.encode(RobotSec()), expect: [200])
        guard let secret = (try? JSONCoder.decode(RobotSec.self, from: data))?.secret, !secret.isEmpty else {
            throw HarborError("PATCH /robots/\(robotID): Harbor returned no secret")
        }
        // Harbor does not return the expiry with the secret (Harbor Satellite reads it back too).
        let robot = try await robot(id: robotID)
        return (secret, robot.expiresAt ?? -1)
    }

    /// Deletes the robot; one Harbor no longer has counts as deleted.
    public func deleteRobot(id: Int64) async throws {
        try await send("DELETE", "/robots/\(id)", expect: [200, 404])
    }

    @discardableResult
    func send(_ method: String, _ path: String, body: [UInt8]? = nil, expect: Set<Int>) async throws -> (
        status: Int, data: [UInt8]
    ) {
        var headers = [("Authorization", authorization), ("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let answer: OutboundHTTP.Answer
        do { answer = try await OutboundHTTP.send(method, apiBase + path, headers: headers, body: body) } catch {
            throw HarborError("\(method) \(path): \(error)")
        }
        guard expect.contains(answer.status) else {
            throw HarborError("\(method) \(path): \(answer.status) \(answer.bodyPrefix())")
        }
        return (answer.status, answer.body)
    }
}

/// Harbor refused a call or did not answer: the API answers 502 and changes no row.
public struct HarborError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = "Harbor: " + description }

    var apiError: APIError { APIError(.badGateway, description) }
}

extension GroundControlConfig {
    /// The password in `registry.passwordFile` (empty when none).
    var registryPassword: String {
        guard let file = registry.passwordFile, let data = FileManager.default.contents(atPath: file) else { return "" }
        return String(decoding: data, as: UTF8.self).trimmed()
    }
}
