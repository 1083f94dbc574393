import Foundation
import GroundControl
import Logging

/// The databases every Ground Control test runs against: a fresh SQLite file, and a fresh
/// database in a temporary PostgreSQL cluster these tests start themselves (initdb and
/// pg_ctl from Debian's postgresql package, run as the postgres user when we are root).
enum TestDatabases {
    enum Kind: String, CaseIterable, Sendable, CustomStringConvertible {
        case sqlite, postgres
        var description: String { rawValue }

        /// Both, unless GC_TEST_DATABASES names a subset (`sqlite`, `postgres`).
        static var enabled: [Kind] {
            guard let only = ProcessInfo.processInfo.environment["GC_TEST_DATABASES"] else { return allCases }
            return allCases.filter { only.contains($0.rawValue) }
        }
    }

    static func url(_ kind: Kind) throws -> String {
        switch kind {
        case .sqlite:
            let dir = NSTemporaryDirectory() + "gc-test-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return "sqlite://\(dir)/gc.sqlite"
        case .postgres:
            let port = try PostgresCluster.shared.get()
            let name = "gc_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
            try PostgresCluster.run(["psql", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-q", "-c", "CREATE DATABASE \(name)"])
            return "postgres://postgres@127.0.0.1:\(port)/\(name)?sslmode=disable"
        }
    }

    static func open(_ kind: Kind, config: GroundControlConfig = testConfig()) async throws -> FleetRepository {
        var logger = Logger(label: "gc-test")
        logger.logLevel = .warning
        var config = config
        config.database = try url(kind)
        let database = try await FleetDatabase.open(url: config.database, logger: logger)
        return FleetRepository(database: database, config: config)
    }

    static func testConfig() -> GroundControlConfig {
        var config = GroundControlConfig()
        // Nothing listens there: publishing fails fast and is counted, the API goes on.
        config.registry.url = "http://127.0.0.1:9"
        config.registry.kind = "distribution"
        // Debug builds run BoringSSL unoptimised: 600,000 rounds per request would take seconds.
        config.passwordIterations = 1_000
        return config
    }
}

/// One temporary PostgreSQL cluster per test process, stopped when the process exits.
enum PostgresCluster {
    static let shared = Result<Int, any Error> { try start() }
    nonisolated(unsafe) static var dataDirectory = ""

    static func binary(_ name: String) -> String {
        for version in ["17", "16", "15"] {
            let path = "/usr/lib/postgresql/\(version)/bin/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return name
    }

    static func start() throws -> Int {
        let root = NSTemporaryDirectory() + "gc-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let port = Int.random(in: 20_000...40_000)
        let data = root + "/data"
        if getuid() == 0 { try run(["chown", "postgres:postgres", root]) }
        try runAsPostgres([binary("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"])
        try runAsPostgres([
            binary("pg_ctl"), "-D", data, "-l", root + "/log", "-w", "-o",
            "-p \(port) -k \(root) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start",
        ])
        dataDirectory = data
        atexit {
            try? PostgresCluster.runAsPostgres([
                PostgresCluster.binary("pg_ctl"), "-D", PostgresCluster.dataDirectory, "-m", "immediate", "stop",
            ])
        }
        return port
    }

    static func runAsPostgres(_ arguments: [String]) throws {
        try run(getuid() == 0 ? ["runuser", "-u", "postgres", "--"] + arguments : arguments)
    }

    /// Runs through /bin/sh with every output to /dev/null. Not Foundation's Process: the
    /// server pg_ctl leaves running would inherit the descriptor Process watches for the
    /// child's end, and waitUntilExit would wait for the server.
    static func run(_ arguments: [String]) throws {
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let status = system(quoted + " </dev/null >/dev/null 2>&1")
        guard status == 0 else { throw ConfigError("\(arguments.joined(separator: " ")) failed (\(status))") }
    }
}
