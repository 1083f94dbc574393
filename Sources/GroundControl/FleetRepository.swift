import Fleet
import FoundationEssentials
import JSONCoding
import SQLKit

/// Every read and write of Ground Control's data: the API, the CLI and a fleet page call
/// these, never SQL of their own. Each write that must be all-or-nothing is one transaction.
public struct FleetRepository: Sendable {
    public let database: FleetDatabase
    public let config: GroundControlConfig

    public init(database: FleetDatabase, config: GroundControlConfig) {
        self.database = database
        self.config = config
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
    static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    public static func robotName(_ satellite: String) -> String { "robot$satellite-\(satellite)" }

    // MARK: users and sessions

    /// Creates the first admin when there is no user; returns the password it set when it
    /// made one up (nil when `GC_ADMIN_PASSWORD` gave it or an admin existed).
    public func bootstrapAdmin(password given: String?) async throws -> String? {
        let count = try await database.withDatabase { db in
            try await db.raw("SELECT COUNT(*) AS n FROM gc_users").first()?.decode(column: "n", as: Int64.self) ?? 0
        }
        guard count == 0 else { return nil }
        let password = given ?? Secrets.randomHex(12)
        try await createUser(username: "admin", password: password, role: "system_admin")
        return given == nil ? password : nil
    }

    public func createUser(username: String, password: String, role: String) async throws {
        guard FleetNames.isValid(username) else { throw APIError.badRequest("invalid username") }
        guard password.count >= 8, password.utf8.count <= 256 else {
            throw APIError.badRequest("a password has 8 to 256 characters")
        }
        guard ["system_admin", "admin", "viewer"].contains(role) else {
            throw APIError.badRequest("role: system_admin, admin or viewer")
        }
        let hash = try Secrets.hashPassword(password, iterations: config.passwordIterations)
        let now = Self.now()
        try await database.transaction { db in
            if try await db.raw("SELECT username FROM gc_users WHERE username = \(bind: username)").first() != nil {
                throw APIError.conflict("user \(username) exists")
            }
            try await db.raw(
                "INSERT INTO gc_users (username, password_hash, role, created_at) VALUES (\(bind: username), \(bind: hash), \(bind: role), \(bind: now))"
            ).run()
        }
    }

    public func listUsers() async throws -> [UserView] {
        try await database.withDatabase { db in
            try await db.raw("SELECT username, role, created_at FROM gc_users ORDER BY username").all().map {
                UserView(
                    username: try $0.decode(column: "username", as: String.self),
                    role: try $0.decode(column: "role", as: String.self),
                    createdAt: Time.rfc3339(try $0.decode(column: "created_at", as: Int64.self)))
            }
        }
    }

    public func deleteUser(_ username: String) async throws {
        try await database.transaction { db in
            guard try await db.raw("SELECT username FROM gc_users WHERE username = \(bind: username)").first() != nil
            else { throw APIError.notFound("no user \(username)") }
            try await db.raw("DELETE FROM gc_sessions WHERE username = \(bind: username)").run()
            try await db.raw("DELETE FROM gc_users WHERE username = \(bind: username)").run()
        }
    }

    /// Failed logins before an account locks, and for how long.
    public static let maxFailedLogins: Int64 = 5
    public static let lockSeconds: Int64 = 15 * 60
    public static let sessionSeconds: Int64 = 24 * 3600

    /// Checks a password; counts failures and locks the account after five in a row.
    public func verifyUser(username: String, password: String) async throws -> (username: String, role: String) {
        let now = Self.now()
        guard
            let row = try await database.withDatabase({ db in
                try await db.raw(
                    "SELECT password_hash, role, failed_attempts, locked_until FROM gc_users WHERE username = \(bind: username)"
                ).first()
            })
        else {
            _ = Secrets.verifyPassword(password, hash: "pbkdf2-sha256$1000$AAAA$AAAA")
            throw APIError.unauthorized("invalid username or password")
        }
        let lockedUntil = try row.decode(column: "locked_until", as: Int64.self)
        if lockedUntil > now { throw APIError.locked("account locked after repeated failed logins; try later") }
        let hash = try row.decode(column: "password_hash", as: String.self)
        let role = try row.decode(column: "role", as: String.self)
        guard Secrets.verifyPassword(password, hash: hash) else {
            let lockUntil = now + Self.lockSeconds
            let max = Self.maxFailedLogins
            try await database.withDatabase { db in
                try await db.raw(
                    """
                    UPDATE gc_users SET failed_attempts = failed_attempts + 1,
                      locked_until = CASE WHEN failed_attempts + 1 >= \(bind: max) THEN \(bind: lockUntil) ELSE locked_until END
                    WHERE username = \(bind: username)
                    """
                ).run()
            }
            throw APIError.unauthorized("invalid username or password")
        }
        try await database.withDatabase { db in
            try await db.raw(
                "UPDATE gc_users SET failed_attempts = 0, locked_until = 0 WHERE username = \(bind: username)"
            ).run()
        }
        return (username, role)
    }

    public func createSession(username: String) async throws -> LoginResponse {
        let token = Secrets.randomHex(32)
        let hash = Secrets.sha256Hex(token)
        let expires = Self.now() + Self.sessionSeconds
        try await database.withDatabase { db in
            try await db.raw(
                "INSERT INTO gc_sessions (token_hash, username, expires_at) VALUES (\(bind: hash), \(bind: username), \(bind: expires))"
            ).run()
        }
        return LoginResponse(token: token, expiresAt: Time.rfc3339(expires))
    }

    public func session(token: String) async throws -> (username: String, role: String)? {
        let hash = Secrets.sha256Hex(token)
        let now = Self.now()
        return try await database.withDatabase { db in
            guard
                let row = try await db.raw(
                    "SELECT u.username AS username, u.role AS role FROM gc_sessions s JOIN gc_users u ON u.username = s.username WHERE s.token_hash = \(bind: hash) AND s.expires_at > \(bind: now)"
                ).first()
            else { return nil }
            return (try row.decode(column: "username", as: String.self), try row.decode(column: "role", as: String.self))
        }
    }

    public func deleteSession(token: String) async throws {
        let hash = Secrets.sha256Hex(token)
        try await database.withDatabase { db in
            try await db.raw("DELETE FROM gc_sessions WHERE token_hash = \(bind: hash)").run()
        }
    }

    // MARK: satellites

    /// Registers a satellite in `groups` and returns its one-time ZTR token (24 h).
    public func createSatellite(name: String, groups: [String], configName: String?) async throws -> String {
        guard FleetNames.isValid(name) else { throw APIError.badRequest("invalid satellite name") }
        for group in groups where !FleetNames.isValid(group) { throw APIError.badRequest("invalid group name") }
        if let configName, !FleetNames.isValid(configName) { throw APIError.badRequest("invalid config_name") }
        if harbor != nil, !Self.isValidHarborRobotName(name) {
            throw APIError.badRequest("invalid satellite name: Harbor robot names allow single separators only")
        }
        let token = Secrets.randomHex(32)
        let tokenHash = Secrets.sha256Hex(token)
        let unusedSecret = Secrets.sha256Hex(Secrets.randomHex(32))
        let now = Self.now()
        let robot = Self.robotName(name)
        let createdRobot = CreatedRobot()
        do {
            try await insertSatellite(
                name: name, groups: groups, configName: configName, robot: robot, unusedSecret: unusedSecret,
                tokenHash: tokenHash, now: now, createdRobot: createdRobot)
        } catch {
            await discardRobot(createdRobot)
            throw error
        }
        return token
    }

    func insertSatellite(
        name: String, groups: [String], configName: String?, robot: String, unusedSecret: String, tokenHash: String,
        now: Int64, createdRobot: CreatedRobot
    ) async throws {
        try await database.transaction { db in
            if try await db.raw("SELECT name FROM gc_satellites WHERE name = \(bind: name)").first() != nil {
                throw APIError.conflict("satellite \(name) exists")
            }
            for group in Set(groups) {
                guard try await db.raw("SELECT name FROM gc_groups WHERE name = \(bind: group)").first() != nil else {
                    throw APIError.notFound("no group \(group)")
                }
            }
            if let configName {
                guard try await db.raw("SELECT name FROM gc_configs WHERE name = \(bind: configName)").first() != nil
                else { throw APIError.notFound("no config \(configName)") }
            }
            try await db.raw(
                """
                INSERT INTO gc_satellites (name, config_name, robot_name, secret_hash, secret_expires_at, created_at)
                VALUES (\(bind: name), \(bind: configName), \(bind: robot), \(bind: unusedSecret), \(bind: Int64(0)), \(bind: now))
                """
            ).run()
            for group in Set(groups) {
                try await db.raw(
                    "INSERT INTO gc_memberships (group_name, satellite_name) VALUES (\(bind: group), \(bind: name))"
                ).run()
            }
            try await db.raw(
                "INSERT INTO gc_ztr_tokens (token_hash, satellite_name, expires_at) VALUES (\(bind: tokenHash), \(bind: name), \(bind: now + 86_400))"
            ).run()
            try await self.createRobot(db, satellite: name, created: createdRobot)
        }
    }

    public enum Redemption: Sendable, Equatable {
        case satellite(String)
        case unknown, used, expired
    }

    /// Spends a ZTR token: exactly one caller, on any replica, gets the satellite.
    public func redeemToken(_ token: String) async throws -> Redemption {
        let hash = Secrets.sha256Hex(token)
        let now = Self.now()
        return try await database.transaction { db in
            if let row = try await db.raw(
                "UPDATE gc_ztr_tokens SET used_at = \(bind: now) WHERE token_hash = \(bind: hash) AND used_at = 0 AND expires_at > \(bind: now) RETURNING satellite_name"
            ).first() {
                return .satellite(try row.decode(column: "satellite_name", as: String.self))
            }
            guard
                let row = try await db.raw(
                    "SELECT used_at, expires_at FROM gc_ztr_tokens WHERE token_hash = \(bind: hash)"
                ).first()
            else { return .unknown }
            if try row.decode(column: "used_at", as: Int64.self) != 0 { return .used }
            return .expired
        }
    }

    /// A new registry secret for `name`; the old one stops working at once.
    public func rotateSecret(_ name: String) async throws -> (robot: String, secret: String, expiresAt: Int64) {
        if harbor != nil { return try await rotateHarborSecret(name) }
        let secret = Secrets.randomHex(32)
        let hash = Secrets.sha256Hex(secret)
        let expires = Self.now() + config.credentialLifetime
        let robot = try await database.withDatabase { db in
            try await db.raw(
                "UPDATE gc_satellites SET secret_hash = \(bind: hash), secret_expires_at = \(bind: expires) WHERE name = \(bind: name) RETURNING robot_name"
            ).first()?.decode(column: "robot_name", as: String.self)
        }
        guard let robot else { throw APIError.notFound("no satellite \(name)") }
        return (robot, secret, expires)
    }

    /// The satellite whose registry credential this is, with its expiry; nil when none.
    public func authenticateSatellite(robot: String, secret: String) async throws -> (name: String, expiresAt: Int64)? {
        let row = try await database.withDatabase({ db in
            try await db.raw(
                "SELECT name, secret_hash, secret_expires_at FROM gc_satellites WHERE robot_name = \(bind: robot)"
            ).first()
        })
        return try Self.verify(row, secret: secret)
    }

    /// A credential's rate-limit count for this minute and its satellite, in one round trip
    /// (the hot path: every heartbeat starts here). PostgreSQL does both in one statement;
    /// SQLite, in-process, in two.
    public func countAndAuthenticate(bucket: String, robot: String, secret: String) async throws
        -> (count: Int64, satellite: (name: String, expiresAt: Int64)?)
    {
        let window = Self.now() / 60
        guard database.isPostgres else {
            let count = try await countRequest(bucket: bucket, window: window)
            return (count, try await authenticateSatellite(robot: robot, secret: secret))
        }
        let row = try await database.withDatabase { db in
            try await db.raw(
                """
                WITH r AS (
                  INSERT INTO gc_rate (bucket, window_start, count) VALUES (\(bind: bucket), \(bind: window), 1)
                  ON CONFLICT (bucket) DO UPDATE SET
                    count = CASE WHEN gc_rate.window_start = excluded.window_start THEN gc_rate.count + 1 ELSE 1 END,
                    window_start = excluded.window_start
                  RETURNING count)
                SELECT r.count, s.name, s.secret_hash, s.secret_expires_at
                FROM r LEFT JOIN gc_satellites s ON s.robot_name = \(bind: robot)
                """
            ).first()
        }
        guard let row else { return (0, nil) }
        let count = try row.decode(column: "count", as: Int64.self)
        guard try row.decode(column: "name", as: String?.self) != nil else { return (count, nil) }
        return (count, try Self.verify(row, secret: secret))
    }

    /// Counts one request in `bucket`'s fixed one-minute window; returns the count so far.
    public func countRequest(bucket: String, window: Int64? = nil) async throws -> Int64 {
        let window = window ?? Self.now() / 60
        return try await database.withDatabase { db in
            try await db.raw(
                """
                INSERT INTO gc_rate (bucket, window_start, count) VALUES (\(bind: bucket), \(bind: window), 1)
                ON CONFLICT (bucket) DO UPDATE SET
                  count = CASE WHEN gc_rate.window_start = excluded.window_start THEN gc_rate.count + 1 ELSE 1 END,
                  window_start = excluded.window_start
                RETURNING count
                """
            ).first()?.decode(column: "count", as: Int64.self) ?? 0
        }
    }

    static func verify(_ row: (any SQLRow)?, secret: String) throws -> (name: String, expiresAt: Int64)? {
        guard let row else { return nil }
        let expected = try row.decode(column: "secret_hash", as: String.self)
        let expires = try row.decode(column: "secret_expires_at", as: Int64.self)
        guard expires > now(),
            Secrets.constantTimeEqual(Array(Secrets.sha256Hex(secret).utf8), Array(expected.utf8))
        else { return nil }
        return (try row.decode(column: "name", as: String.self), expires)
    }

    /// How many heartbeats of one satellite are kept (the newest).
    public static let heartbeatsKept = 100

    /// Stores every field of a heartbeat and marks the satellite seen.
    public func recordHeartbeat(satellite: String, _ report: Heartbeat) async throws {
        let now = Self.nowMilliseconds()
        let images = String(decoding: try JSONCoder.encode(report.cachedImages), as: UTF8.self)
        let imagesDigest = Secrets.sha256Hex(images)
        let memory = Int64(clamping: report.memoryUsedBytes)
        let storage = Int64(clamping: report.storageUsedBytes)
        let cpu = report.cpuPercent.isFinite ? report.cpuPercent : 0
        let keep = Self.heartbeatsKept - 1
        let insertImages: SQLQueryString = """
            INSERT INTO gc_image_sets (digest, images) VALUES (\(bind: imagesDigest), \(bind: images))
            ON CONFLICT (digest) DO NOTHING
            """
        let insertHeartbeat: SQLQueryString = """
            INSERT INTO gc_heartbeats (satellite_name, received_at_ms, activity, state_report_interval,
              latest_state_digest, latest_config_digest, memory_used_bytes, storage_used_bytes, cpu_percent,
              request_created_time, last_sync_duration_ms, image_count, cached_images, images_digest)
            VALUES (\(bind: satellite), \(bind: now), \(bind: report.activity), \(bind: report.stateReportInterval),
              \(bind: report.latestStateDigest), \(bind: report.latestConfigDigest), \(bind: memory), \(bind: storage),
              \(bind: cpu), \(bind: report.requestCreatedTime), \(bind: report.lastSyncDurationMs),
              \(bind: Int64(report.imageCount)), '', \(bind: imagesDigest))
            ON CONFLICT (satellite_name, received_at_ms) DO NOTHING
            """
        let markSeen: SQLQueryString = "UPDATE gc_satellites SET last_seen = \(bind: now / 1000) WHERE name = \(bind: satellite)"
        /// Deletes this satellite's heartbeats older than its newest `offset` + 1.
        func trim(offset: Int) -> SQLQueryString {
            """
            DELETE FROM gc_heartbeats WHERE satellite_name = \(bind: satellite) AND received_at_ms <
              (SELECT received_at_ms FROM gc_heartbeats WHERE satellite_name = \(bind: satellite)
               ORDER BY received_at_ms DESC LIMIT 1 OFFSET \(unsafeRaw: String(offset)))
            """
        }
        let trimInStatement = trim(offset: keep - 1)
        let trimAfterInsert = trim(offset: keep)
        if database.isPostgres {
            // One statement, one round trip: the heartbeat, last_seen and retention. The
            // DELETE sees the table as it was before this statement (the new row is not
            // among them), so it keeps the newest `keep` older rows: `keep` + 1 in all.
            try await database.withDatabase { db in
                try await db.raw(
                    "WITH img AS (\(insertImages)), ins AS (\(insertHeartbeat) RETURNING 1), seen AS (\(markSeen) RETURNING 1) \(trimInStatement)"
                ).run()
            }
        } else {
            try await database.transaction { db in
                for statement in [insertImages, insertHeartbeat, markSeen, trimAfterInsert] { try await db.raw(statement).run() }
            }
        }
        try await sweepImageSetsSometimes()
    }

    /// One heartbeat in this many also drops the image lists no kept heartbeat names.
    static let imageSetSweepOdds: UInt32 = 5_000

    func sweepImageSetsSometimes() async throws {
        guard UInt32.random(in: 0..<Self.imageSetSweepOdds) == 0 else { return }
        try await sweepImageSets()
    }

    /// Deletes the image lists no heartbeat names. On PostgreSQL the table lock waits for
    /// heartbeats that inserted (or found) a list and are not committed yet, and holds new
    /// ones back until the sweep is done (milliseconds), so a list is never deleted under
    /// a heartbeat that is about to name it.
    public func sweepImageSets() async throws {
        let postgres = database.isPostgres
        try await database.transaction { db in
            if postgres { try await db.raw("LOCK TABLE gc_image_sets IN SHARE ROW EXCLUSIVE MODE").run() }
            try await db.raw(
                """
                DELETE FROM gc_image_sets WHERE NOT EXISTS
                  (SELECT 1 FROM gc_heartbeats h WHERE h.images_digest = gc_image_sets.digest)
                """
            ).run()
        }
    }

    public func heartbeats(satellite: String, limit: Int = 20) async throws -> [HeartbeatView] {
        let limit = Int64(max(1, min(limit, Self.heartbeatsKept)))
        return try await database.withDatabase { db in
            try await db.raw(
                """
                SELECT h.*, COALESCE(s.images, h.cached_images) AS images_json FROM gc_heartbeats h
                LEFT JOIN gc_image_sets s ON s.digest = h.images_digest
                WHERE h.satellite_name = \(bind: satellite) ORDER BY h.received_at_ms DESC LIMIT \(bind: limit)
                """
            ).all().map { try Self.heartbeatView($0, satellite: satellite) }
        }
    }

    /// The newest heartbeat of every satellite that has reported, in one query.
    func latestHeartbeats() async throws -> [String: HeartbeatView] {
        try await database.withDatabase { db in
            var result: [String: HeartbeatView] = [:]
            for row in try await db.raw(
                """
                SELECT h.*, COALESCE(s.images, h.cached_images) AS images_json FROM gc_heartbeats h JOIN
                  (SELECT satellite_name, MAX(received_at_ms) AS newest FROM gc_heartbeats GROUP BY satellite_name) n
                  ON h.satellite_name = n.satellite_name AND h.received_at_ms = n.newest
                LEFT JOIN gc_image_sets s ON s.digest = h.images_digest
                """
            ).all() {
                let name = try row.decode(column: "satellite_name", as: String.self)
                result[name] = try Self.heartbeatView(row, satellite: name)
            }
            return result
        }
    }

    static func heartbeatView(_ row: any SQLRow, satellite: String) throws -> HeartbeatView {
        // The image list lives in gc_image_sets (by digest) or, for rows written before that
        // table existed, inline; the queries hand either one over as images_json.
        let json = try row.decode(column: "images_json", as: String.self)
        let images = json.isEmpty ? [] : try JSONCoder.decode([CachedImage].self, from: Array(json.utf8))
        let report = Heartbeat(
            name: satellite,
            activity: try row.decode(column: "activity", as: String.self),
            stateReportInterval: try row.decode(column: "state_report_interval", as: String.self),
            latestStateDigest: try row.decode(column: "latest_state_digest", as: String.self),
            latestConfigDigest: try row.decode(column: "latest_config_digest", as: String.self),
            memoryUsedBytes: UInt64(clamping: try row.decode(column: "memory_used_bytes", as: Int64.self)),
            storageUsedBytes: UInt64(clamping: try row.decode(column: "storage_used_bytes", as: Int64.self)),
            cpuPercent: try row.decode(column: "cpu_percent", as: Double.self),
            requestCreatedTime: try row.decode(column: "request_created_time", as: String.self),
            lastSyncDurationMs: try row.decode(column: "last_sync_duration_ms", as: Int64.self),
            imageCount: Int(try row.decode(column: "image_count", as: Int64.self)),
            cachedImages: images)
        return HeartbeatView(
            receivedAt: Time.rfc3339(milliseconds: try row.decode(column: "received_at_ms", as: Int64.self)),
            report: report)
    }

    struct SatelliteRow: Sendable {
        var name: String
        var configName: String?
        var robot: String
        var createdAt: Int64
        var lastSeen: Int64
        var groups: [String]
    }

    func satelliteRows(name: String? = nil) async throws -> [SatelliteRow] {
        try await database.withDatabase { db in
            let rows: [any SQLRow]
            if let name {
                rows = try await db.raw(
                    "SELECT name, config_name, robot_name, created_at, last_seen FROM gc_satellites WHERE name = \(bind: name)"
                ).all()
            } else {
                rows = try await db.raw(
                    "SELECT name, config_name, robot_name, created_at, last_seen FROM gc_satellites ORDER BY name"
                ).all()
            }
            let members = try await db.raw(
                "SELECT group_name, satellite_name FROM gc_memberships ORDER BY group_name"
            ).all()
            var groupsOf: [String: [String]] = [:]
            for m in members {
                groupsOf[try m.decode(column: "satellite_name", as: String.self), default: []].append(
                    try m.decode(column: "group_name", as: String.self))
            }
            return try rows.map { row in
                let name = try row.decode(column: "name", as: String.self)
                return SatelliteRow(
                    name: name, configName: try row.decode(column: "config_name", as: String?.self),
                    robot: try row.decode(column: "robot_name", as: String.self),
                    createdAt: try row.decode(column: "created_at", as: Int64.self),
                    lastSeen: try row.decode(column: "last_seen", as: Int64.self), groups: groupsOf[name] ?? [])
            }
        }
    }

    /// Every satellite with its state; for the list routes, /metrics and the fleet page.
    /// Three queries whatever the fleet's size (satellites with memberships, groups, newest
    /// heartbeats), not a few per satellite.
    public func listSatellites() async throws -> [SatelliteView] {
        let rows = try await satelliteRows()
        let groups = try await database.withDatabase { db in
            try await db.raw("SELECT name, registry, artifacts, created_at, updated_at FROM gc_groups").all().map {
                try Self.groupRow($0)
            }
        }
        let groupsByName = Dictionary(groups.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let latest = try await latestHeartbeats()
        let now = Self.now()
        return rows.map { row in
            let desired = Self.desiredImages(row.groups.compactMap { groupsByName[$0] })
            return status(of: row, desired: desired, last: latest[row.name], now: now).view(row)
        }
    }

    public func satellite(_ name: String) async throws -> SatelliteView {
        guard let row = try await satelliteRows(name: name).first else { throw APIError.notFound("no satellite \(name)") }
        return try await status(of: row).view(row)
    }

    public func satelliteStatus(_ name: String) async throws -> SatelliteStatusView {
        guard let row = try await satelliteRows(name: name).first else { throw APIError.notFound("no satellite \(name)") }
        return try await status(of: row)
    }

    public func deleteSatellite(_ name: String) async throws -> [String] {
        try await database.transaction { db in
            guard try await db.raw("SELECT name FROM gc_satellites WHERE name = \(bind: name)").first() != nil else {
                throw APIError.notFound("no satellite \(name)")
            }
            let groups = try await db.raw(
                "SELECT group_name FROM gc_memberships WHERE satellite_name = \(bind: name)"
            ).all().map { try $0.decode(column: "group_name", as: String.self) }
            try await self.deleteRobot(db, satellite: name)
            for table in ["gc_heartbeats", "gc_ztr_tokens", "gc_memberships"] {
                try await db.raw("DELETE FROM \(unsafeRaw: table) WHERE satellite_name = \(bind: name)").run()
            }
            try await db.raw("DELETE FROM gc_satellites WHERE name = \(bind: name)").run()
            return groups
        }
    }

    /// Seconds after which a satellite that has not reported is stale: three intervals.
    func staleAfter(reportedInterval: String) -> Int64 {
        3 * (Self.parseEvery(reportedInterval) ?? config.heartbeatInterval)
    }

    /// `@every 00h00m30s` → 30.
    static func parseEvery(_ text: String) -> Int64? {
        guard text.hasPrefix("@every ") else { return nil }
        var total: Int64 = 0
        var number: Int64 = 0
        var sawDigit = false
        for ch in text.dropFirst(7) {
            if let d = ch.wholeNumberValue {
                number = number * 10 + Int64(d)
                sawDigit = true
            } else {
                let unit: Int64? = ["h": 3600, "m": 60, "s": 1][String(ch)]
                guard let unit, sawDigit else { return nil }
                total += number * unit
                number = 0
                sawDigit = false
            }
        }
        return total > 0 && !sawDigit ? total : nil
    }

    func status(of row: SatelliteRow) async throws -> SatelliteStatusView {
        let desired = try await desiredImages(groups: row.groups)
        let last = try await heartbeats(satellite: row.name, limit: 1).first
        return status(of: row, desired: desired, last: last, now: Self.now())
    }

    func status(of row: SatelliteRow, desired: [String], last: HeartbeatView?, now: Int64) -> SatelliteStatusView {
        let reported = Set((last?.report.cachedImages ?? []).flatMap { Self.referenceForms($0.reference) })
        let desiredForms = desired.map { ($0, Self.referenceForms($0)) }
        let missing = desiredForms.filter { Set($0.1).isDisjoint(with: reported) }.map { $0.0 }
        let desiredAll = Set(desiredForms.flatMap { $0.1 })
        let unexpected = (last?.report.cachedImages ?? []).map(\.reference).filter {
            Set(Self.referenceForms($0)).isDisjoint(with: desiredAll)
        }
        let stale = row.lastSeen > 0 && now - row.lastSeen > staleAfter(reportedInterval: last?.report.stateReportInterval ?? "")
        let inSync = last != nil && missing.isEmpty
        let state = row.lastSeen == 0 ? "never_seen" : stale ? "stale" : inSync ? "in_sync" : "drifting"
        return SatelliteStatusView(
            name: row.name, state: state, lastSeen: row.lastSeen == 0 ? nil : Time.rfc3339(row.lastSeen), stale: stale,
            inSync: inSync, desired: desired, missing: missing, unexpected: unexpected, heartbeat: last,
            link: last.flatMap { LinkUsage.parse(activity: $0.report.activity) })
    }

    /// The forms under which a reference may be reported: with and without the registry
    /// host, `repo:tag` and `repo@digest` separately.
    static func referenceForms(_ reference: String) -> [String] {
        var forms: [String] = []
        var base = reference
        var digest: String?
        if let at = base.firstIndex(of: "@") {
            digest = String(base[base.index(after: at)...])
            base = String(base[..<at])
        }
        var repository = base
        var tag: String?
        if let colon = base.lastIndex(of: ":"), !base[colon...].contains("/") {
            repository = String(base[..<colon])
            tag = String(base[base.index(after: colon)...])
        }
        var repos = [repository]
        if let slash = repository.firstIndex(of: "/"),
            repository[..<slash].contains(".") || repository[..<slash].contains(":") || repository[..<slash] == "localhost"
        {
            repos.append(String(repository[repository.index(after: slash)...]))
        }
        for r in repos {
            if let tag { forms.append("\(r):\(tag)") }
            if let digest { forms.append("\(r)@\(digest)") }
            if tag == nil && digest == nil { forms.append(r) }
        }
        return forms
    }

    /// `repository:tag` / `repository@digest` of every wanted image of these groups.
    func desiredImages(groups: [String]) async throws -> [String] {
        var rows: [GroupRow] = []
        for group in groups {
            if let g = try await groupRow(group) { rows.append(g) }
        }
        return Self.desiredImages(rows)
    }

    static func desiredImages(_ groups: [GroupRow]) -> [String] {
        var result: [String] = []
        for g in groups {
            for artifact in g.artifacts where artifact.isWantedImage {
                if !artifact.digest.isEmpty {
                    result.append("\(artifact.repository)@\(artifact.digest)")
                } else {
                    for tag in artifact.tag { result.append("\(artifact.repository):\(tag)") }
                }
            }
        }
        var seen = Set<String>()
        return result.filter { seen.insert($0).inserted }
    }

    // MARK: groups

    struct GroupRow: Sendable {
        var name: String
        var registry: String
        var artifacts: [GroupArtifact]
        var createdAt: Int64
        var updatedAt: Int64
    }

    func groupRow(_ name: String) async throws -> GroupRow? {
        try await database.withDatabase { db in
            guard
                let row = try await db.raw(
                    "SELECT name, registry, artifacts, created_at, updated_at FROM gc_groups WHERE name = \(bind: name)"
                ).first()
            else { return nil }
            return try Self.groupRow(row)
        }
    }

    static func groupRow(_ row: any SQLRow) throws -> GroupRow {
        GroupRow(
            name: try row.decode(column: "name", as: String.self),
            registry: try row.decode(column: "registry", as: String.self),
            artifacts: try JSONCoder.decode(
                [GroupArtifact].self, from: Array(try row.decode(column: "artifacts", as: String.self).utf8)),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            updatedAt: try row.decode(column: "updated_at", as: Int64.self))
    }

    /// Creates or replaces a group's artifacts; returns its members (whose states change).
    public func syncGroup(_ request: GroupSyncRequest) async throws -> [String] {
        guard FleetNames.isValid(request.group) else { throw APIError.badRequest("invalid group name") }
        let artifacts = request.artifacts ?? []
        for artifact in artifacts {
            guard Self.isValidRepository(artifact.repository) else {
                throw APIError.badRequest("invalid repository \(artifact.repository)")
            }
            for tag in artifact.tag where !Self.isValidTag(tag) { throw APIError.badRequest("invalid tag \(tag)") }
            if !artifact.digest.isEmpty, !Self.isValidDigest(artifact.digest) {
                throw APIError.badRequest("invalid digest \(artifact.digest)")
            }
            if artifact.digest.isEmpty, artifact.tag.isEmpty, !artifact.deleted {
                throw APIError.badRequest("\(artifact.repository): a tag or a digest")
            }
        }
        let registry = request.registry ?? config.registry.url
        let json = String(decoding: try JSONCoder.encode(artifacts), as: UTF8.self)
        let now = Self.now()
        let name = request.group
        return try await database.transaction { db in
            try await db.raw(
                """
                INSERT INTO gc_groups (name, registry, artifacts, created_at, updated_at)
                VALUES (\(bind: name), \(bind: registry), \(bind: json), \(bind: now), \(bind: now))
                ON CONFLICT (name) DO UPDATE SET registry = excluded.registry, artifacts = excluded.artifacts,
                  updated_at = excluded.updated_at
                """
            ).run()
            let members = try await db.raw(
                "SELECT satellite_name FROM gc_memberships WHERE group_name = \(bind: name) ORDER BY satellite_name"
            ).all().map { try $0.decode(column: "satellite_name", as: String.self) }
            try await self.rescopeRobots(db, satellites: members)
            return members
        }
    }

    public func listGroups() async throws -> [GroupView] {
        let rows = try await database.withDatabase { db in
            try await db.raw("SELECT name, registry, artifacts, created_at, updated_at FROM gc_groups ORDER BY name")
                .all().map { try Self.groupRow($0) }
        }
        var views: [GroupView] = []
        for row in rows { views.append(try await groupView(row)) }
        return views
    }

    public func group(_ name: String) async throws -> GroupView {
        guard let row = try await groupRow(name) else { throw APIError.notFound("no group \(name)") }
        return try await groupView(row)
    }

    func groupView(_ row: GroupRow) async throws -> GroupView {
        GroupView(
            group: row.name, registry: row.registry, artifacts: row.artifacts,
            satellites: try await members(of: row.name), createdAt: Time.rfc3339(row.createdAt),
            updatedAt: Time.rfc3339(row.updatedAt))
    }

    public func members(of group: String) async throws -> [String] {
        try await database.withDatabase { db in
            try await db.raw(
                "SELECT satellite_name FROM gc_memberships WHERE group_name = \(bind: group) ORDER BY satellite_name"
            ).all().map { try $0.decode(column: "satellite_name", as: String.self) }
        }
    }

    /// Deletes a group; returns its former members.
    public func deleteGroup(_ name: String) async throws -> [String] {
        try await database.transaction { db in
            guard try await db.raw("SELECT name FROM gc_groups WHERE name = \(bind: name)").first() != nil else {
                throw APIError.notFound("no group \(name)")
            }
            let members = try await db.raw(
                "SELECT satellite_name FROM gc_memberships WHERE group_name = \(bind: name)"
            ).all().map { try $0.decode(column: "satellite_name", as: String.self) }
            try await db.raw("DELETE FROM gc_memberships WHERE group_name = \(bind: name)").run()
            try await db.raw("DELETE FROM gc_groups WHERE name = \(bind: name)").run()
            try await self.rescopeRobots(db, satellites: members)
            return members
        }
    }

    public func addMember(satellite: String, group: String) async throws {
        try await database.transaction { db in
            guard try await db.raw("SELECT name FROM gc_groups WHERE name = \(bind: group)").first() != nil else {
                throw APIError.notFound("no group \(group)")
            }
            guard try await db.raw("SELECT name FROM gc_satellites WHERE name = \(bind: satellite)").first() != nil
            else { throw APIError.notFound("no satellite \(satellite)") }
            try await db.raw(
                "INSERT INTO gc_memberships (group_name, satellite_name) VALUES (\(bind: group), \(bind: satellite)) ON CONFLICT DO NOTHING"
            ).run()
            try await self.rescopeRobots(db, satellites: [satellite])
        }
    }

    public func removeMember(satellite: String, group: String) async throws {
        try await database.transaction { db in
            guard
                try await db.raw(
                    "SELECT group_name FROM gc_memberships WHERE group_name = \(bind: group) AND satellite_name = \(bind: satellite)"
                ).first() != nil
            else { throw APIError.notFound("satellite \(satellite) is not in group \(group)") }
            try await db.raw(
                "DELETE FROM gc_memberships WHERE group_name = \(bind: group) AND satellite_name = \(bind: satellite)"
            ).run()
            try await self.rescopeRobots(db, satellites: [satellite])
        }
    }

    // MARK: configs

    public func createConfig(name: String, document: JSON) async throws {
        guard FleetNames.isValid(name) else { throw APIError.badRequest("invalid config_name") }
        guard case .object = document else { throw APIError.badRequest("config: a JSON object") }
        let text = document.text()
        let now = Self.now()
        try await database.transaction { db in
            if try await db.raw("SELECT name FROM gc_configs WHERE name = \(bind: name)").first() != nil {
                throw APIError.conflict("config \(name) exists")
            }
            try await db.raw(
                "INSERT INTO gc_configs (name, document, created_at, updated_at) VALUES (\(bind: name), \(bind: text), \(bind: now), \(bind: now))"
            ).run()
        }
    }

    public func listConfigs() async throws -> [ConfigView] {
        try await database.withDatabase { db in
            try await db.raw("SELECT name, document, created_at, updated_at FROM gc_configs ORDER BY name").all().map {
                try Self.configView($0)
            }
        }
    }

    public func configDocument(_ name: String) async throws -> ConfigView {
        let view = try await database.withDatabase { db in
            try await db.raw(
                "SELECT name, document, created_at, updated_at FROM gc_configs WHERE name = \(bind: name)"
            ).first().map { try Self.configView($0) }
        }
        guard let view else { throw APIError.notFound("no config \(name)") }
        return view
    }

    static func configView(_ row: any SQLRow) throws -> ConfigView {
        ConfigView(
            configName: try row.decode(column: "name", as: String.self),
            config: try JSON.parse(Array(try row.decode(column: "document", as: String.self).utf8)),
            createdAt: Time.rfc3339(try row.decode(column: "created_at", as: Int64.self)),
            updatedAt: Time.rfc3339(try row.decode(column: "updated_at", as: Int64.self)))
    }

    /// Replaces (`merge == false`) or merge-patches (RFC 7396) a config; returns the
    /// satellites that use it.
    public func updateConfig(name: String, document: JSON, merge: Bool) async throws -> [String] {
        let now = Self.now()
        return try await database.transaction { db in
            guard
                let row = try await db.raw("SELECT document FROM gc_configs WHERE name = \(bind: name)").first()
            else { throw APIError.notFound("no config \(name)") }
            let current = try JSON.parse(Array(try row.decode(column: "document", as: String.self).utf8))
            let next = merge ? Self.mergePatch(current, document) : document
            guard case .object = next else { throw APIError.badRequest("config: a JSON object") }
            try await db.raw(
                "UPDATE gc_configs SET document = \(bind: next.text()), updated_at = \(bind: now) WHERE name = \(bind: name)"
            ).run()
            return try await db.raw("SELECT name FROM gc_satellites WHERE config_name = \(bind: name)").all().map {
                try $0.decode(column: "name", as: String.self)
            }
        }
    }

    public func deleteConfig(_ name: String) async throws {
        try await database.transaction { db in
            guard try await db.raw("SELECT name FROM gc_configs WHERE name = \(bind: name)").first() != nil else {
                throw APIError.notFound("no config \(name)")
            }
            if try await db.raw("SELECT name FROM gc_satellites WHERE config_name = \(bind: name)").first() != nil {
                throw APIError.conflict("config \(name) is assigned to satellites")
            }
            try await db.raw("DELETE FROM gc_configs WHERE name = \(bind: name)").run()
        }
    }

    public func assignConfig(satellite: String, configName: String) async throws {
        try await database.transaction { db in
            guard try await db.raw("SELECT name FROM gc_configs WHERE name = \(bind: configName)").first() != nil
            else { throw APIError.notFound("no config \(configName)") }
            guard try await db.raw("SELECT name FROM gc_satellites WHERE name = \(bind: satellite)").first() != nil
            else { throw APIError.notFound("no satellite \(satellite)") }
            try await db.raw(
                "UPDATE gc_satellites SET config_name = \(bind: configName) WHERE name = \(bind: satellite)"
            ).run()
        }
    }

    /// RFC 7396 JSON merge patch.
    public static func mergePatch(_ target: JSON, _ patch: JSON) -> JSON {
        guard case .object(let patchMembers) = patch else { return patch }
        var members: [(String, JSON)]
        if case .object(let t) = target { members = t } else { members = [] }
        for (key, value) in patchMembers {
            let index = members.firstIndex { $0.0 == key }
            if value == .null {
                if let index { members.remove(at: index) }
            } else if let index {
                members[index].1 = mergePatch(members[index].1, value)
            } else {
                members.append((key, mergePatch(.null, value)))
            }
        }
        return .object(members)
    }

    // MARK: state documents

    /// The satellite-state document of `name` (its groups' and its config's references).
    public func satelliteStateDocument(_ name: String) async throws -> SatelliteState? {
        guard let row = try await satelliteRows(name: name).first else { return nil }
        let base = config.registryHost
        return SatelliteState(
            states: row.groups.map { FleetNames.reference(registryURL: base, repository: FleetNames.groupStateRepository($0)) },
            config: row.configName.map {
                FleetNames.reference(registryURL: base, repository: FleetNames.configStateRepository($0))
            } ?? "")
    }

    public func groupStateDocument(_ name: String) async throws -> GroupState? {
        guard let row = try await groupRow(name) else { return nil }
        return GroupState(group: row.name, registry: row.registry, artifacts: row.artifacts)
    }

    /// Repositories a satellite may pull: its groups' images and its own state artifacts.
    public func pullableRepositories(satellite: String) async throws -> Set<String> {
        guard let row = try await satelliteRows(name: satellite).first else { return [] }
        var repos: Set<String> = [FleetNames.satelliteStateRepository(satellite)]
        if let c = row.configName { repos.insert(FleetNames.configStateRepository(c)) }
        let host = config.registryHost
        for group in row.groups {
            repos.insert(FleetNames.groupStateRepository(group))
            for artifact in try await groupRow(group)?.artifacts ?? [] where artifact.isWantedImage {
                var repo = artifact.repository
                if repo.hasPrefix(host + "/") { repo.removeFirst(host.count + 1) }
                repos.insert(repo)
            }
        }
        return repos
    }

    // MARK: validation

    static func isValidRepository(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 255, !text.hasPrefix("/"), !text.hasSuffix("/") else { return false }
        var parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // A leading registry host (with a dot, a port or localhost) is allowed.
        if parts.count > 1, parts[0].contains(".") || parts[0].contains(":") || parts[0] == "localhost" {
            let host = parts.removeFirst()
            guard host.isASCII, let first = host.first, first.isLetter || first.isNumber, !host.contains(".."),
                host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:".contains($0) })
            else { return false }
        }
        return !parts.isEmpty && parts.allSatisfy { FleetNames.isValid($0) || isValidComponent($0) }
    }

    static func isValidComponent(_ text: String) -> Bool {
        guard text.isASCII, let first = text.first, let last = text.last else { return false }
        let ok = text.allSatisfy { $0.isLowercase || $0.isNumber || "._-".contains($0) }
        return ok && (first.isLowercase || first.isNumber) && (last.isLowercase || last.isNumber) && !text.contains("..")
    }

    static func isValidTag(_ text: String) -> Bool {
        guard text.isASCII, (1...128).contains(text.count), let first = text.first else { return false }
        return (first.isLetter || first.isNumber || first == "_")
            && text.allSatisfy { $0.isLetter || $0.isNumber || "._-".contains($0) }
    }

    static func isValidDigest(_ text: String) -> Bool {
        guard text.hasPrefix("sha256:") else { return false }
        let hex = text.dropFirst(7)
        return hex.count == 64 && hex.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}

extension String {
    var isASCII: Bool { utf8.allSatisfy { $0 < 0x80 } }
}
