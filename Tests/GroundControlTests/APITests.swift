import Fleet
import Foundation
import GroundControl
import Hummingbird
import HummingbirdTesting
import JSONCoding
import Logging
import SQLKit
import Testing

/// The API end to end through Hummingbird's router, on SQLite and on PostgreSQL.
@Suite struct APITests {
    static let adminPassword = "correct-horse-battery"

    struct Harness {
        let repository: FleetRepository
        let app: any ApplicationProtocol
    }

    static func harness(_ kind: TestDatabases.Kind, config: GroundControlConfig = TestDatabases.testConfig())
        async throws -> Harness
    {
        let repository = try await TestDatabases.open(kind, config: config)
        _ = try await repository.bootstrapAdmin(password: adminPassword)
        var logger = Logger(label: "gc-test")
        logger.logLevel = .critical
        let publisher = StatePublisher(repository: repository, config: config, tokenIssuer: nil, logger: logger)
        let app = buildApplication(
            config: config, repository: repository, publisher: publisher, tokenIssuer: nil, logger: logger)
        return Harness(repository: repository, app: app)
    }

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    static let admin: HTTPFields = [.authorization: basic("admin", adminPassword), .contentType: "application/json"]

    static func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    static func json(_ response: TestResponse) -> JSON { (try? JSON.parse(Array(response.body.readableBytesView))) ?? .null }

    static func count(_ repository: FleetRepository, _ table: String) async throws -> Int64 {
        try await repository.database.withDatabase { db in
            try await db.raw("SELECT COUNT(*) AS n FROM \(unsafeRaw: table)").first()?.decode(column: "n", as: Int64.self)
                ?? -1
        }
    }

    @Test(arguments: TestDatabases.Kind.enabled)
    func onboardingHeartbeatDriftAndRefresh(kind: TestDatabases.Kind) async throws {
        let h = try await Self.harness(kind)
        defer { Task { await h.repository.database.shutdown() } }
        try await h.app.test(.router) { client in
            // A group, then a satellite in it: the answer is its one-time token.
            try await client.execute(
                uri: "/api/groups/sync", method: .post, headers: Self.admin,
                body: Self.body(#"{"group":"ships","artifacts":[{"repository":"library/nginx","tag":["1.27"],"type":"IMAGE"}]}"#)
            ) { #expect($0.status == .ok) }
            var token = ""
            try await client.execute(
                uri: "/api/satellites", method: .post, headers: Self.admin,
                body: Self.body(#"{"name":"edge-01","groups":["ships"]}"#)
            ) { response in
                #expect(response.status == .ok)
                guard case .string(let t)? = Self.json(response)["token"] else { Issue.record("no token"); return }
                token = t
            }
            #expect(token.count == 64)

            // Never seen before the first heartbeat.
            try await client.execute(uri: "/api/satellites/edge-01", method: .get, headers: Self.admin) { response in
                #expect(Self.json(response)["state"] == .string("never_seen"))
            }

            // ZTR: the token buys credentials once; reuse and unknown tokens get 400.
            var credentials = RegistryCredentials(url: "", username: "", password: "")
            try await client.execute(
                uri: "/satellites/ztr", method: .post, body: Self.body(#"{"token":"\#(token)"}"#)
            ) { response in
                #expect(response.status == .ok)
                let result = try JSONCoder.decode(ZTRResult.self, from: Array(response.body.readableBytesView))
                #expect(result.isComplete)
                #expect(result.state == "127.0.0.1:9/satellite/satellite-state/edge-01/state:latest")
                credentials = result.auth
            }
            try await client.execute(uri: "/satellites/ztr", method: .post, body: Self.body(#"{"token":"\#(token)"}"#)) {
                #expect($0.status == .badRequest)
                #expect(Self.json($0)["code"] == .number("400"))
            }
            try await client.execute(uri: "/satellites/ztr/\(token)", method: .get) { #expect($0.status == .badRequest) }

            // An expired token: 401, as Harbor Satellite answers.
            var second = ""
            try await client.execute(
                uri: "/api/satellites", method: .post, headers: Self.admin, body: Self.body(#"{"name":"edge-02"}"#)
            ) { if case .string(let t)? = Self.json($0)["token"] { second = t } }
            try await h.repository.database.withDatabase { db in
                try await db.raw("UPDATE gc_ztr_tokens SET expires_at = 1 WHERE satellite_name = 'edge-02'").run()
            }
            try await client.execute(uri: "/satellites/ztr/\(second)", method: .get) { #expect($0.status == .unauthorized) }

            // Heartbeats: Basic auth with the registry credential; every field stored.
            let auth: HTTPFields = [.authorization: Self.basic(credentials.username, credentials.password)]
            let empty = Heartbeat(
                name: "edge-01", activity: "idle", stateReportInterval: "@every 00h00m30s",
                latestStateDigest: "sha256:" + String(repeating: "a", count: 64), memoryUsedBytes: UInt64.max,
                storageUsedBytes: 12_345, cpuPercent: 1.5, requestCreatedTime: "2026-12-05T10:00:00Z",
                lastSyncDurationMs: 321, imageCount: 0)
            try await client.execute(
                uri: "/satellites/sync", method: .post, headers: auth,
                body: ByteBuffer(bytes: try JSONCoder.encode(empty))
            ) { response in
                #expect(response.status == .ok)
                let reply = try JSONCoder.decode(HeartbeatReply.self, from: Array(response.body.readableBytesView))
                #expect(reply.events.isEmpty)
                #expect(!reply.asksForCredentialRefresh)
            }
            try await client.execute(uri: "/api/satellites/edge-01/status", method: .get, headers: Self.admin) { response in
                let status = try JSONCoder.decode(SatelliteStatusView.self, from: Array(response.body.readableBytesView))
                #expect(status.state == "drifting")
                #expect(status.missing == ["library/nginx:1.27"])
                #expect(status.heartbeat?.report.lastSyncDurationMs == 321)
                #expect(status.heartbeat?.report.latestStateDigest == empty.latestStateDigest)
                #expect(status.heartbeat?.report.memoryUsedBytes == UInt64(Int64.max))
            }
            var full = empty
            full.cachedImages = [
                CachedImage(reference: "127.0.0.1:9/library/nginx:1.27", sizeBytes: 1_000),
                CachedImage(reference: "other/thing:1", sizeBytes: 5),
            ]
            full.imageCount = 2
            try await client.execute(
                uri: "/satellites/sync", method: .post, headers: auth, body: ByteBuffer(bytes: try JSONCoder.encode(full))
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/satellites/edge-01/status", method: .get, headers: Self.admin) { response in
                let status = try JSONCoder.decode(SatelliteStatusView.self, from: Array(response.body.readableBytesView))
                #expect(status.state == "in_sync")
                #expect(status.missing.isEmpty)
                #expect(status.unexpected == ["other/thing:1"])
            }
            try await client.execute(uri: "/api/satellites/edge-01/images", method: .get, headers: Self.admin) { response in
                let images = try JSONCoder.decode([CachedImage].self, from: Array(response.body.readableBytesView))
                #expect(images.count == 2)
            }
            try await client.execute(uri: "/api/satellites/active", method: .get, headers: Self.admin) { response in
                let list = try JSONCoder.decode([SatelliteView].self, from: Array(response.body.readableBytesView))
                #expect(list.map(\.name) == ["edge-01"])
            }

            // A report naming another satellite, and a wrong secret, are refused.
            var other = empty
            other.name = "edge-02"
            try await client.execute(
                uri: "/satellites/sync", method: .post, headers: auth, body: ByteBuffer(bytes: try JSONCoder.encode(other))
            ) { #expect($0.status == .forbidden) }
            try await client.execute(
                uri: "/satellites/sync", method: .post,
                headers: [.authorization: Self.basic(credentials.username, "wrong")],
                body: ByteBuffer(bytes: try JSONCoder.encode(empty))
            ) { #expect($0.status == .unauthorized) }

            // Refresh rotates the secret: the old one stops working.
            var fresh = ""
            try await client.execute(uri: "/sat/refresh", method: .post, headers: auth) { response in
                #expect(response.status == .ok)
                fresh = try JSONCoder.decode(CredentialRefreshResult.self, from: Array(response.body.readableBytesView)).secret
            }
            #expect(fresh.count == 64 && fresh != credentials.password)
            try await client.execute(
                uri: "/satellites/sync", method: .post, headers: auth, body: ByteBuffer(bytes: try JSONCoder.encode(empty))
            ) { #expect($0.status == .unauthorized) }
            try await client.execute(
                uri: "/satellites/refresh", method: .post,
                headers: [.authorization: Self.basic(credentials.username, fresh)]
            ) { #expect($0.status == .ok) }

            // Removal from the last group, then deletion.
            try await client.execute(
                uri: "/api/groups/satellite", method: .delete, headers: Self.admin,
                body: Self.body(#"{"satellite":"edge-01","group":"ships"}"#)
            ) { #expect($0.status == .ok) }
            let state = try await h.repository.satelliteStateDocument("edge-01")
            #expect(state == SatelliteState(states: [], config: ""))
            try await client.execute(uri: "/api/satellites/edge-01", method: .delete, headers: Self.admin) {
                #expect($0.status == .noContent)
            }
            try await client.execute(uri: "/api/satellites/edge-01", method: .get, headers: Self.admin) {
                #expect($0.status == .notFound)
            }
        }
        #expect(try await Self.count(h.repository, "gc_heartbeats") == 0)
    }

    @Test(arguments: TestDatabases.Kind.enabled)
    func credentialNearExpiryAsksForRefresh(kind: TestDatabases.Kind) async throws {
        var config = TestDatabases.testConfig()
        config.credentialLifetime = 3600
        let h = try await Self.harness(kind, config: config)
        defer { Task { await h.repository.database.shutdown() } }
        let token = try await h.repository.createSatellite(name: "edge-09", groups: [], configName: nil)
        guard case .satellite(let name) = try await h.repository.redeemToken(token) else {
            Issue.record("token refused")
            return
        }
        let credential = try await h.repository.rotateSecret(name)
        try await h.app.test(.router) { client in
            try await client.execute(
                uri: "/satellites/sync", method: .post,
                headers: [.authorization: Self.basic(credential.robot, credential.secret)],
                body: Self.body(#"{"name":"edge-09"}"#)
            ) { response in
                let reply = try JSONCoder.decode(HeartbeatReply.self, from: Array(response.body.readableBytesView))
                #expect(reply.actions == [.init(type: "refresh_credentials")])
            }
        }
    }

    @Test(arguments: TestDatabases.Kind.enabled)
    func badInputIsA4xxAndChangesNoRow(kind: TestDatabases.Kind) async throws {
        let h = try await Self.harness(kind)
        defer { Task { await h.repository.database.shutdown() } }
        try await h.app.test(.router) { client in
            let bodies: [(String, String)] = [
                ("/api/satellites", "{not json"),
                ("/api/satellites", #"{"name":"edge'; DROP TABLE gc_satellites; --"}"#),
                ("/api/satellites", #"{"name":"../../etc"}"#),
                ("/api/satellites", #"{"name":"edge-01","surprise":1}"#),
                ("/api/satellites", #"{"name":"edge-01","groups":["nope"]}"#),
                ("/api/satellites", "[]"),
                ("/api/groups/sync", #"{"group":"g","artifacts":[{"repository":"../x","tag":["1"]}]}"#),
                ("/api/groups/sync", #"{"group":"g","artifacts":[{"repository":"a/b","tag":["bad tag"]}]}"#),
                ("/api/groups/sync", #"{"group":"g","artifacts":[{"repository":"a/b","digest":"sha256:zz"}]}"#),
                ("/api/configs", #"{"config_name":"c","config":[1]}"#),
                ("/satellites/ztr", #"{"token":""}"#),
                ("/satellites/ztr", #"{"token":"x'; DELETE FROM gc_users; --"}"#),
                ("/login", #"{"username":"admin"}"#),
            ]
            for (uri, text) in bodies {
                try await client.execute(uri: uri, method: .post, headers: Self.admin, body: Self.body(text)) { response in
                    #expect((400..<500).contains(Int(response.status.code)), "\(uri) \(text): \(response.status)")
                    #expect(response.headers[.contentType] == "application/json", "\(uri) \(text)")
                }
            }
            try await client.execute(
                uri: "/api/satellites", method: .post, headers: Self.admin,
                body: ByteBuffer(repeating: UInt8(ascii: " "), count: 2 << 20)
            ) { #expect($0.status == .contentTooLarge) }
            try await client.execute(uri: "/api/satellites/..%2f..%2fetc", method: .get, headers: Self.admin) {
                #expect((400..<500).contains(Int($0.status.code)))
            }
            try await client.execute(uri: "/api/satellites", method: .get) { #expect($0.status == .unauthorized) }
        }
        for table in ["gc_satellites", "gc_groups", "gc_configs", "gc_memberships", "gc_ztr_tokens"] {
            #expect(try await Self.count(h.repository, table) == 0, "\(table)")
        }
        #expect(try await Self.count(h.repository, "gc_users") == 1)
    }

    @Test(arguments: TestDatabases.Kind.enabled)
    func loginSessionsRolesAndLockout(kind: TestDatabases.Kind) async throws {
        let h = try await Self.harness(kind)
        defer { Task { await h.repository.database.shutdown() } }
        try await h.app.test(.router) { client in
            var session = ""
            try await client.execute(
                uri: "/login", method: .post, body: Self.body(#"{"username":"admin","password":"\#(Self.adminPassword)"}"#)
            ) { response in
                #expect(response.status == .ok)
                if case .string(let t)? = Self.json(response)["token"] { session = t }
            }
            let bearer: HTTPFields = [.authorization: "Bearer \(session)"]
            try await client.execute(
                uri: "/api/users", method: .post, headers: bearer,
                body: Self.body(#"{"username":"viewer1","password":"viewer-password","role":"viewer"}"#)
            ) { #expect($0.status == .created) }
            let viewer: HTTPFields = [.authorization: Self.basic("viewer1", "viewer-password")]
            try await client.execute(uri: "/api/groups", method: .get, headers: viewer) { #expect($0.status == .ok) }
            try await client.execute(
                uri: "/api/groups/sync", method: .post, headers: viewer, body: Self.body(#"{"group":"g"}"#)
            ) { #expect($0.status == .forbidden) }
            // Five wrong passwords lock the account, even against the right one.
            for _ in 0..<5 {
                try await client.execute(
                    uri: "/login", method: .post, body: Self.body(#"{"username":"viewer1","password":"nope-nope"}"#)
                ) { #expect($0.status == .unauthorized) }
            }
            try await client.execute(
                uri: "/login", method: .post, body: Self.body(#"{"username":"viewer1","password":"viewer-password"}"#)
            ) { #expect($0.status == .tooManyRequests) }
            try await client.execute(uri: "/logout", method: .post, headers: bearer) { #expect($0.status == .noContent) }
            try await client.execute(uri: "/api/users", method: .get, headers: bearer) { #expect($0.status == .unauthorized) }
        }
    }

    @Test(arguments: TestDatabases.Kind.enabled)
    func configsMergePatchAndAssign(kind: TestDatabases.Kind) async throws {
        let h = try await Self.harness(kind)
        defer { Task { await h.repository.database.shutdown() } }
        try await h.app.test(.router) { client in
            try await client.execute(
                uri: "/api/configs", method: .post, headers: Self.admin,
                body: Self.body(#"{"config_name":"edge","config":{"app_config":{"log_level":"info","heartbeat_interval":"@every 00h00m30s"}}}"#)
            ) { #expect($0.status == .created) }
            try await client.execute(
                uri: "/api/configs/edge", method: .patch, headers: Self.admin,
                body: Self.body(#"{"app_config":{"log_level":"debug","heartbeat_interval":null}}"#)
            ) { response in
                #expect(response.status == .ok)
                let view = try JSONCoder.decode(ConfigView.self, from: Array(response.body.readableBytesView))
                #expect(view.config == .object([("app_config", .object([("log_level", .string("debug"))]))]))
            }
            try await client.execute(
                uri: "/api/satellites", method: .post, headers: Self.admin,
                body: Self.body(#"{"name":"edge-01","config_name":"edge"}"#)
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/configs/edge", method: .delete, headers: Self.admin) {
                #expect($0.status == .conflict)
            }
            try await client.execute(
                uri: "/api/configs", method: .post, headers: Self.admin,
                body: Self.body(#"{"config_name":"other","config":{}}"#)
            ) { #expect($0.status == .created) }
            try await client.execute(
                uri: "/api/configs/satellite", method: .post, headers: Self.admin,
                body: Self.body(#"{"satellite":"edge-01","config_name":"other"}"#)
            ) { #expect($0.status == .ok) }
            try await client.execute(uri: "/api/configs/edge", method: .delete, headers: Self.admin) {
                #expect($0.status == .noContent)
            }
        }
        let state = try await h.repository.satelliteStateDocument("edge-01")
        #expect(state?.config == "127.0.0.1:9/satellite/config-state/other/state:latest")
    }
}

/// Two ground-control replicas over one PostgreSQL behave as one.
@Suite struct ReplicaTests {
    @Test func twoReplicasShareTokensSessionsAndRateLimits() async throws {
        guard TestDatabases.Kind.enabled.contains(.postgres) else { return }
        var config = TestDatabases.testConfig()
        config.satelliteRequestsPerMinute = 4
        let first = try await TestDatabases.open(.postgres, config: config)
        config.database = first.config.database
        var logger = Logger(label: "gc-test")
        logger.logLevel = .critical
        let second = FleetRepository(
            database: try await FleetDatabase.open(url: config.database, logger: logger), config: config)
        defer {
            Task {
                await first.database.shutdown()
                await second.database.shutdown()
            }
        }
        _ = try await first.bootstrapAdmin(password: APITests.adminPassword)
        #expect(try await second.bootstrapAdmin(password: "another-password") == nil)
        func app(_ repository: FleetRepository) -> some ApplicationProtocol {
            buildApplication(
                config: config, repository: repository,
                publisher: StatePublisher(repository: repository, config: config, tokenIssuer: nil, logger: logger),
                tokenIssuer: nil, logger: logger)
        }
        let a = app(first)
        let b = app(second)
        @Sendable func string(_ json: JSON, _ key: String) -> String {
            if case .string(let t)? = json[key] { return t }
            return ""
        }
        let (token, session) = try await a.test(.router) { client in
            let token = try await client.execute(
                uri: "/api/satellites", method: .post, headers: APITests.admin, body: APITests.body(#"{"name":"edge-01"}"#)
            ) { string(APITests.json($0), "token") }
            let session = try await client.execute(
                uri: "/login", method: .post,
                body: APITests.body(#"{"username":"admin","password":"\#(APITests.adminPassword)"}"#)
            ) { string(APITests.json($0), "token") }
            return (token, session)
        }
        // The token, spent concurrently on both replicas, is granted exactly once.
        async let onA: HTTPResponse.Status = a.test(.router) { client in
            try await client.execute(uri: "/satellites/ztr/\(token)", method: .get) { $0.status }
        }
        async let onB: HTTPResponse.Status = b.test(.router) { client in
            try await client.execute(uri: "/satellites/ztr/\(token)", method: .get) { $0.status }
        }
        let statuses = try await [onA, onB]
        #expect(statuses.filter { $0 == .ok }.count == 1)
        #expect(statuses.filter { $0 == .badRequest }.count == 1)
        // A session made on one replica works on the other; the satellite is there too.
        try await b.test(.router) { client in
            try await client.execute(
                uri: "/api/satellites/edge-01", method: .get, headers: [.authorization: "Bearer \(session)"]
            ) { #expect($0.status == .ok) }
        }
        // The per-credential rate limit is one budget across replicas.
        var codes: [HTTPResponse.Status] = []
        for index in 0..<6 {
            let replica = index % 2 == 0 ? a : b
            codes.append(
                try await replica.test(.router) { client in
                    try await client.execute(
                        uri: "/satellites/sync", method: .post,
                        headers: [.authorization: APITests.basic("robot$satellite-edge-01", "wrong-\(index)")],
                        body: APITests.body("{}")
                    ) { $0.status }
                })
        }
        #expect(codes.prefix(4).allSatisfy { $0 == .unauthorized })
        #expect(codes.suffix(2).allSatisfy { $0 == .tooManyRequests })
    }
}
