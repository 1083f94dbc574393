@preconcurrency import AsyncKit
import FoundationEssentials
import OCICore
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit

/// The database behind Ground Control: SQLite (one file, the default) or PostgreSQL.
///
/// Both are reached through sql-kit, so every query is written once: `\(bind:)` becomes
/// `?` for SQLite and `$n` for PostgreSQL, and the schema uses only types both accept
/// (TEXT, BIGINT, DOUBLE PRECISION; times are Unix seconds or milliseconds). Nothing a
/// request needs is kept in memory, so replicas over one PostgreSQL behave as one.
public final class FleetDatabase: Sendable {
    enum Pool: @unchecked Sendable {
        case postgres(EventLoopGroupConnectionPool<PostgresConnectionSource>)
        /// One connection: SQLite has one writer, and a transaction must own it.
        case sqlite(EventLoopGroupConnectionPool<SQLiteConnectionSource>, MultiThreadedEventLoopGroup)
    }

    let pool: Pool
    let logger: Logger
    public var isPostgres: Bool {
        if case .postgres = pool { return true }
        return false
    }

    /// Opens `url` (`sqlite://PATH` or `postgres://…`) and brings the schema up to date.
    public static func open(url: String, logger: Logger) async throws -> FleetDatabase {
        let database: FleetDatabase
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw ConfigError("database: sqlite://PATH names no file") }
            if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
                try PosixFile.makeDirectories(String(path[..<slash]))
            }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let source = SQLiteConnectionSource(
                configuration: .init(storage: .file(path: path), enableForeignKeys: true), threadPool: .singleton)
            let pool = EventLoopGroupConnectionPool(source: source, maxConnectionsPerEventLoop: 1, on: group)
            database = FleetDatabase(pool: .sqlite(pool, group), logger: logger)
            try await database.withDatabase { db in
                try await db.raw("PRAGMA journal_mode = WAL").run()
                try await db.raw("PRAGMA busy_timeout = 10000").run()
            }
        } else if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            let configuration: SQLPostgresConfiguration
            do { configuration = try SQLPostgresConfiguration(url: url) } catch {
                throw ConfigError("database: not a PostgreSQL URL (\(error))")
            }
            let source = PostgresConnectionSource(sqlConfiguration: configuration)
            let pool = EventLoopGroupConnectionPool(
                source: source, maxConnectionsPerEventLoop: 4, on: MultiThreadedEventLoopGroup.singleton)
            database = FleetDatabase(pool: .postgres(pool), logger: logger)
        } else {
            throw ConfigError("database: sqlite://PATH or postgres://…, not \(url)")
        }
        do {
            try await database.migrate()
        } catch {
            await database.shutdown()
            throw error
        }
        return database
    }

    init(pool: Pool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    public func shutdown() async {
        switch pool {
        case .postgres(let pool):
            try? await pool.shutdownAsync()
        case .sqlite(let pool, let group):
            try? await pool.shutdownAsync()
            try? await group.shutdownGracefully()
        }
    }

    /// Runs `body` on one connection of the pool.
    public func withDatabase<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws
        -> T
    {
        let logger = self.logger
        switch pool {
        case .postgres(let pool):
            return try await pool.withConnection(logger: logger) { connection in
                connection.eventLoop.makeFutureWithTask { try await body(connection.sql()) }
            }.get()
        case .sqlite(let pool, _):
            return try await pool.withConnection(logger: logger) { connection in
                connection.eventLoop.makeFutureWithTask { try await body(connection.sql()) }
            }.get()
        }
    }

    /// Runs `body` in one transaction: all of it is committed or none.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws
        -> T
    {
        let postgres = isPostgres
        return try await withDatabase { db in
            try await db.raw(postgres ? "BEGIN" : "BEGIN IMMEDIATE").run()
            do {
                let result = try await body(db)
                try await db.raw("COMMIT").run()
                return result
            } catch {
                try? await db.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    /// The schema, one list of statements per version. Append only.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE gc_users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL,
              failed_attempts BIGINT NOT NULL DEFAULT 0, locked_until BIGINT NOT NULL DEFAULT 0,
              created_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE gc_sessions (token_hash TEXT PRIMARY KEY,
              username TEXT NOT NULL REFERENCES gc_users(username) ON DELETE CASCADE,
              expires_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE gc_configs (name TEXT PRIMARY KEY, document TEXT NOT NULL,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE gc_groups (name TEXT PRIMARY KEY, registry TEXT NOT NULL, artifacts TEXT NOT NULL,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE gc_satellites (name TEXT PRIMARY KEY,
              config_name TEXT REFERENCES gc_configs(name) ON DELETE SET NULL,
              robot_name TEXT NOT NULL UNIQUE, secret_hash TEXT NOT NULL, secret_expires_at BIGINT NOT NULL,
              created_at BIGINT NOT NULL, last_seen BIGINT NOT NULL DEFAULT 0)
            """,
            """
            CREATE TABLE gc_memberships (
              group_name TEXT NOT NULL REFERENCES gc_groups(name) ON DELETE CASCADE,
              satellite_name TEXT NOT NULL REFERENCES gc_satellites(name) ON DELETE CASCADE,
              PRIMARY KEY (group_name, satellite_name))
            """,
            """
            CREATE TABLE gc_ztr_tokens (token_hash TEXT PRIMARY KEY,
              satellite_name TEXT NOT NULL REFERENCES gc_satellites(name) ON DELETE CASCADE,
              expires_at BIGINT NOT NULL, used_at BIGINT NOT NULL DEFAULT 0)
            """,
            """
            CREATE TABLE gc_heartbeats (
              satellite_name TEXT NOT NULL REFERENCES gc_satellites(name) ON DELETE CASCADE,
              received_at_ms BIGINT NOT NULL, activity TEXT NOT NULL, state_report_interval TEXT NOT NULL,
              latest_state_digest TEXT NOT NULL, latest_config_digest TEXT NOT NULL,
              memory_used_bytes BIGINT NOT NULL, storage_used_bytes BIGINT NOT NULL,
              cpu_percent DOUBLE PRECISION NOT NULL, request_created_time TEXT NOT NULL,
              last_sync_duration_ms BIGINT NOT NULL, image_count BIGINT NOT NULL, cached_images TEXT NOT NULL,
              PRIMARY KEY (satellite_name, received_at_ms))
            """,
            """
            CREATE TABLE gc_published (repository TEXT PRIMARY KEY, digest TEXT NOT NULL, pushed_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE gc_rate (bucket TEXT PRIMARY KEY, window_start BIGINT NOT NULL, count BIGINT NOT NULL)
            """,
        ],
        // registry.kind = harbor: the id of the satellite's robot account in Harbor.
        ["ALTER TABLE gc_satellites ADD COLUMN harbor_robot_id BIGINT"],
        // Heartbeat history without repeating its image list: a satellite reports the same
        // 20 images every 30 s, and a group's satellites the same ones. Each distinct list is
        // stored once (content-addressed); a heartbeat names it by digest. Rows written
        // before keep their list inline (images_digest '').
        [
            "CREATE TABLE gc_image_sets (digest TEXT PRIMARY KEY, images TEXT NOT NULL)",
            "ALTER TABLE gc_heartbeats ADD COLUMN images_digest TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX gc_heartbeats_images ON gc_heartbeats (images_digest)",
        ],
    ]

    func migrate() async throws {
        let postgres = isPostgres
        try await transaction { db in
            // Replicas starting together: one migrates, the others wait for it.
            if postgres { try await db.raw("SELECT pg_advisory_xact_lock(7100531)").run() }
            try await db.raw("CREATE TABLE IF NOT EXISTS gc_schema (version BIGINT PRIMARY KEY)").run()
            let row = try await db.raw("SELECT MAX(version) AS v FROM gc_schema").first()
            let current = (try? row?.decode(column: "v", as: Int64?.self)) ?? nil ?? 0
            for (index, statements) in Self.migrations.enumerated() where Int64(index + 1) > current {
                for statement in statements { try await db.raw("\(unsafeRaw: statement)").run() }
                try await db.raw("INSERT INTO gc_schema (version) VALUES (\(bind: Int64(index + 1)))").run()
            }
        }
    }
}
