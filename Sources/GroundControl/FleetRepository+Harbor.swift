import Fleet
import FoundationEssentials
import SQLKit
import Synchronization

/// `registry.kind = harbor`: every change of a satellite's groups re-scopes its Harbor robot
/// inside the same transaction, so a Harbor that refuses leaves no row changed (502).
extension FleetRepository {
    /// The Harbor client when the registry is a Harbor, nil for `distribution`.
    public var harbor: HarborRobots? { config.registry.kind == "harbor" ? HarborRobots(config: config) : nil }

    /// Harbor's robot names: lowercase letters and digits with single `.`, `_` or `-` between.
    static func isValidHarborRobotName(_ name: String) -> Bool {
        FleetNames.isValid(name) && !name.contains("__") && !name.contains("--")
    }

    /// The Harbor projects a satellite pulls from: the first path component of each wanted
    /// image of its groups (Harbor Satellite's `GetProjectNames`) and `satellite`, the
    /// project of the state artifacts.
    static func harborProjects(_ db: any SQLDatabase, satellite: String, registryHost: String) async throws -> [String] {
        let groups = try await db.raw(
            "SELECT group_name FROM gc_memberships WHERE satellite_name = \(bind: satellite) ORDER BY group_name"
        ).all().map { try $0.decode(column: "group_name", as: String.self) }
        var projects: [String] = []
        for group in groups {
            guard let row = try await db.raw("SELECT * FROM gc_groups WHERE name = \(bind: group)").first()
            else { continue }
            for artifact in try Self.groupRow(row).artifacts where !artifact.deleted {
                var repository = artifact.repository
                if repository.hasPrefix(registryHost + "/") { repository.removeFirst(registryHost.count + 1) }
                guard let project = repository.split(separator: "/").first.map(String.init), !projects.contains(project)
                else { continue }
                projects.append(project)
            }
        }
        if !projects.contains(HarborRobots.stateProject) { projects.append(HarborRobots.stateProject) }
        return projects
    }

    /// Re-scopes the Harbor robots of `satellites` to their groups as they now stand in `db`.
    func rescopeRobots(_ db: any SQLDatabase, satellites: [String]) async throws {
        guard let harbor else { return }
        for satellite in Set(satellites).sorted() {
            guard
                let id = try await db.raw(
                    "SELECT harbor_robot_id FROM gc_satellites WHERE name = \(bind: satellite)"
                ).first()?.decode(column: "harbor_robot_id", as: Int64?.self)
            else { continue }
            let projects = try await Self.harborProjects(db, satellite: satellite, registryHost: config.registryHost)
            do { try await harbor.updateProjects(robotID: id, projects: projects) } catch let error as HarborError {
                throw error.apiError
            }
        }
    }

    /// Creates the satellite's robot inside the transaction that inserts the satellite; the
    /// robot is deleted again when the transaction does not commit.
    func createRobot(_ db: any SQLDatabase, satellite: String, created: CreatedRobot) async throws {
        guard let harbor else { return }
        do {
            try await harbor.ensureStateProject()
            if try await harbor.robotExists(named: satellite) {
                throw APIError.conflict("Harbor has a robot account named \(satellite) already")
            }
            let projects = try await Self.harborProjects(db, satellite: satellite, registryHost: config.registryHost)
            let robot = try await harbor.createRobot(named: satellite, projects: projects)
            created.id.store(robot.id, ordering: .relaxed)
            try await db.raw(
                "UPDATE gc_satellites SET harbor_robot_id = \(bind: robot.id), robot_name = \(bind: robot.name) WHERE name = \(bind: satellite)"
            ).run()
        } catch let error as HarborError {
            throw error.apiError
        }
    }

    /// Deletes a robot created by a transaction that then failed (best effort).
    func discardRobot(_ created: CreatedRobot) async {
        let id = created.id.load(ordering: .relaxed)
        guard id != 0, let harbor else { return }
        try? await harbor.deleteRobot(id: id)
    }

    /// Rotates the robot's secret in Harbor (`PATCH /robots/{id}`); when the robot expires
    /// within the refresh window its duration is extended first, so a refresh keeps it alive.
    func rotateHarborSecret(_ name: String) async throws -> (robot: String, secret: String, expiresAt: Int64) {
        guard let harbor else { throw APIError.badRequest("not a Harbor registry") }
        guard
            let row = try await database.withDatabase({ db in
                try await db.raw("SELECT robot_name, harbor_robot_id FROM gc_satellites WHERE name = \(bind: name)").first()
            })
        else { throw APIError.notFound("no satellite \(name)") }
        let robotName = try row.decode(column: "robot_name", as: String.self)
        guard let id = try row.decode(column: "harbor_robot_id", as: Int64?.self) else {
            throw APIError.conflict("satellite \(name) has no Harbor robot account")
        }
        do {
            try await harbor.extendIfExpiring(robotID: id, now: Self.now(), window: config.credentialRefreshWindow)
            let (secret, harborExpiry) = try await harbor.refreshSecret(robotID: id)
            // -1: Harbor's "never expires"; the stored expiry must still compare as later.
            let expires = harborExpiry > 0 ? harborExpiry : Int64(Int32.max)
            let hash = Secrets.sha256Hex(secret)
            try await database.withDatabase { db in
                try await db.raw(
                    "UPDATE gc_satellites SET secret_hash = \(bind: hash), secret_expires_at = \(bind: expires) WHERE name = \(bind: name)"
                ).run()
            }
            return (robotName, secret, expires)
        } catch let error as HarborError {
            throw error.apiError
        }
    }

    /// Deletes the satellite's robot in Harbor inside the transaction deleting the satellite.
    func deleteRobot(_ db: any SQLDatabase, satellite: String) async throws {
        guard let harbor else { return }
        guard
            let id = try await db.raw("SELECT harbor_robot_id FROM gc_satellites WHERE name = \(bind: satellite)").first()?
                .decode(column: "harbor_robot_id", as: Int64?.self)
        else { return }
        do { try await harbor.deleteRobot(id: id) } catch let error as HarborError { throw error.apiError }
    }

    /// Gives a spent ZTR token back when the credential could not be made (Harbor refused):
    /// the satellite may try again, as with Harbor Satellite, which deletes a token only on success.
    public func unspendToken(_ token: String) async throws {
        let hash = Secrets.sha256Hex(token)
        try await database.withDatabase { db in
            try await db.raw("UPDATE gc_ztr_tokens SET used_at = 0 WHERE token_hash = \(bind: hash)").run()
        }
    }
}

/// The id of a robot created inside a transaction, for deleting it when the transaction fails.
final class CreatedRobot: Sendable {
    let id = Atomic<Int64>(0)
}
