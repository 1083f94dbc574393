import Fleet
import FoundationEssentials
import OCICore
import Hummingbird
import HummingbirdCore
import JSONCoding
import Logging
import SQLKit

/// Builds ground-control's HTTP application over `repository`; `serve` and the tests share it.
public func buildApplication(
    config: GroundControlConfig, repository: FleetRepository, publisher: StatePublisher, tokenIssuer: TokenIssuer?,
    logger: Logger, server: HTTPServerBuilder = .http1()
) -> some ApplicationProtocol {
    let router = Router(context: BasicRequestContext.self)
    let api = FleetAPI(config: config, repository: repository, publisher: publisher, tokenIssuer: tokenIssuer)
    api.register(on: router)
    FleetUI(config: config, repository: repository).register(on: router)
    return Application(
        router: router,
        server: server,
        configuration: .init(
            address: .hostname(config.listenHost, port: config.listenPort), serverName: "ground-control"),
        logger: logger)
}

/// The routes: Harbor Satellite's satellite-facing and admin API, plus health and metrics.
struct FleetAPI: Sendable {
    let config: GroundControlConfig
    let repository: FleetRepository
    let publisher: StatePublisher
    let tokenIssuer: TokenIssuer?

    typealias Context = BasicRequestContext

    /// Request bodies above this are refused (413) before parsing.
    static let maxBody = 1 << 20

    func register(on router: Router<Context>) {
        router.add(middleware: JSONErrorMiddleware())
        router.get("/ping") { _, _ in Self.text("pong") }
        router.get("/health") { _, _ in
            _ = try await repository.database.withDatabase { db in try await db.raw("SELECT 1 AS one").first() }
            return try Self.json(["status": "healthy"])
        }
        router.get("/metrics") { _, _ in try await metrics() }
        router.get("/openapi.json") { _, _ in OpenAPIDocument.response() }

        // Satellite-facing.
        router.post("/satellites/ztr") { request, _ in
            let body = try await Self.decode(ZTRRequest.self, request, keys: ["token"])
            return try await ztr(token: body.token)
        }
        router.get("/satellites/ztr/:token") { _, context in
            try await ztr(token: context.parameters.require("token"))
        }
        router.post("/satellites/sync") { request, _ in try await heartbeat(request) }
        router.post("/satellites/refresh") { request, _ in try await refresh(request) }
        router.post("/sat/refresh") { request, _ in try await refresh(request) }
        if let tokenIssuer {
            router.get("/auth/token") { request, _ in try await tokenIssuer.issue(request, repository: repository) }
        }

        // Sessions.
        router.post("/login") { request, _ in
            let body = try await Self.decode(LoginRequest.self, request, keys: ["username", "password"])
            let user = try await repository.verifyUser(username: body.username, password: body.password)
            return try Self.json(try await repository.createSession(username: user.username))
        }
        for path in ["/logout", "/api/logout"] {  // ours, and Harbor Satellite's
            router.post(RouterPath(path)) { request, _ in
                if let token = Self.bearer(request) { try await repository.deleteSession(token: token) }
                return Response(status: .noContent)
            }
        }
        registerAdmin(on: router.group("api"))
    }

    func registerAdmin(on api: RouterGroup<Context>) {
        // Users.
        api.get("users") { request, _ in
            _ = try await admin(request, role: "system_admin")
            return try Self.json(try await repository.listUsers())
        }
        api.post("users") { request, _ in
            _ = try await admin(request, role: "system_admin")
            let body = try await Self.decode(UserCreateRequest.self, request, keys: ["username", "password", "role"])
            try await repository.createUser(username: body.username, password: body.password, role: body.role ?? "admin")
            // Harbor Satellite answers with the user it made.
            return try Self.json(try await repository.user(body.username), status: .created)
        }
        registerUserRoutes(on: api)
        api.delete("users/:username") { request, context in
            let me = try await admin(request, role: "system_admin")
            let name = try context.parameters.require("username")
            guard name != me else { throw APIError.badRequest("you cannot delete yourself") }
            try await repository.deleteUser(name)
            return Response(status: .noContent)
        }

        // Groups.
        api.post("groups/sync") { request, _ in
            _ = try await admin(request, role: "admin")
            let body = try await Self.decode(GroupSyncRequest.self, request, keys: ["group", "registry", "artifacts"])
            let members = try await repository.syncGroup(body)
            await publisher.publish(groups: [body.group], satellites: members)
            return try Self.json(try await repository.group(body.group))
        }
        api.get("groups") { request, _ in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.listGroups())
        }
        api.get("groups/:group") { request, context in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.group(Self.name(context, "group")))
        }
        api.delete("groups/:group") { request, context in
            _ = try await admin(request, role: "admin")
            let group = try Self.name(context, "group")
            let members = try await repository.deleteGroup(group)
            await publisher.publish(satellites: members)
            await publisher.unpublish(repository: FleetNames.groupStateRepository(group))
            return Response(status: .noContent)
        }
        api.get("groups/:group/satellites") { request, context in
            _ = try await admin(request, role: "viewer")
            let group = try Self.name(context, "group")
            _ = try await repository.group(group)
            return try Self.json(try await repository.members(of: group))
        }
        api.post("groups/satellite") { request, _ in
            _ = try await admin(request, role: "admin")
            let body = try await Self.decode(MembershipRequest.self, request, keys: ["satellite", "group"])
            try await repository.addMember(satellite: body.satellite, group: body.group)
            await publisher.publish(satellites: [body.satellite])
            return Response(status: .ok)
        }
        api.delete("groups/satellite") { request, _ in
            _ = try await admin(request, role: "admin")
            let body = try await Self.decode(MembershipRequest.self, request, keys: ["satellite", "group"])
            try await repository.removeMember(satellite: body.satellite, group: body.group)
            await publisher.publish(satellites: [body.satellite])
            return Response(status: .ok)
        }

        // Satellites.
        api.post("satellites") { request, _ in
            _ = try await admin(request, role: "admin")
            let body = try await Self.decode(
                SatelliteCreateRequest.self, request, keys: ["name", "groups", "config_name"])
            let token = try await repository.createSatellite(
                name: body.name, groups: body.groups ?? [], configName: body.configName)
            await publisher.publish(satellites: [body.name])
            return try Self.json(TokenResponse(token: token))
        }
        api.get("satellites") { request, _ in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.listSatellites())
        }
        api.get("satellites/active") { request, _ in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.listSatellites().filter { $0.state == "in_sync" || $0.state == "drifting" })
        }
        api.get("satellites/stale") { request, _ in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.listSatellites().filter { $0.state == "stale" })
        }
        api.get("satellites/:satellite") { request, context in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.satellite(Self.name(context, "satellite")))
        }
        api.delete("satellites/:satellite") { request, context in
            _ = try await admin(request, role: "admin")
            let name = try Self.name(context, "satellite")
            _ = try await repository.deleteSatellite(name)
            await publisher.unpublish(repository: FleetNames.satelliteStateRepository(name))
            return Response(status: .noContent)
        }
        api.get("satellites/:satellite/status") { request, context in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.satelliteStatus(Self.name(context, "satellite")))
        }
        api.get("satellites/:satellite/images") { request, context in
            _ = try await admin(request, role: "viewer")
            let name = try Self.name(context, "satellite")
            _ = try await repository.satellite(name)
            return try Self.json(try await repository.heartbeats(satellite: name, limit: 1).first?.report.cachedImages ?? [])
        }
        api.get("satellites/:satellite/heartbeats") { request, context in
            _ = try await admin(request, role: "viewer")
            let name = try Self.name(context, "satellite")
            _ = try await repository.satellite(name)
            return try Self.json(try await repository.heartbeats(satellite: name))
        }

        // Configs.
        api.get("configs") { request, _ in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.listConfigs())
        }
        api.post("configs") { request, _ in
            _ = try await admin(request, role: "admin")
            let body = try await Self.decode(ConfigCreateRequest.self, request, keys: ["config_name", "config"])
            try await repository.createConfig(name: body.configName, document: body.config)
            await publisher.publish(configs: [body.configName])
            return try Self.json(try await repository.configDocument(body.configName), status: .created)
        }
        api.get("configs/:config") { request, context in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.configDocument(Self.name(context, "config")))
        }
        for (method, merge) in [(HTTPRequest.Method.put, false), (.patch, true)] {
            api.on("configs/:config", method: method) { request, context in
                _ = try await admin(request, role: "admin")
                let name = try Self.name(context, "config")
                let document = try await Self.body(request)
                let users = try await repository.updateConfig(name: name, document: document, merge: merge)
                await publisher.publish(configs: [name], satellites: users)
                return try Self.json(try await repository.configDocument(name))
            }
        }
        api.delete("configs/:config") { request, context in
            _ = try await admin(request, role: "admin")
            let name = try Self.name(context, "config")
            try await repository.deleteConfig(name)
            await publisher.unpublish(repository: FleetNames.configStateRepository(name))
            return Response(status: .noContent)
        }
        api.post("configs/satellite") { request, _ in
            _ = try await admin(request, role: "admin")
            let body = try await Self.decode(ConfigAssignRequest.self, request, keys: ["satellite", "config_name"])
            try await repository.assignConfig(satellite: body.satellite, configName: body.configName)
            await publisher.publish(configs: [body.configName], satellites: [body.satellite])
            return Response(status: .ok)
        }
    }

    // MARK: satellite-facing handlers

    func ztr(token: String) async throws -> Response {
        guard (1...256).contains(token.utf8.count) else { throw APIError.badRequest("Error: Invalid Token") }
        try await rateLimit("ztr:" + Secrets.sha256Hex(token))
        switch try await repository.redeemToken(token) {
        case .unknown, .used:
            // Harbor Satellite deletes a spent token, so reuse answers as an unknown one: 400.
            throw APIError.badRequest("Error: Invalid Token")
        case .expired:
            throw APIError.unauthorized("Error: Token Expired")
        case .satellite(let name):
            let credential: (robot: String, secret: String, expiresAt: Int64)
            do { credential = try await repository.rotateSecret(name) } catch {
                // No credential (Harbor refused): the token stays good for another try.
                try await repository.unspendToken(token)
                throw error
            }
            await publisher.publish(satellites: [name])
            let state = FleetNames.reference(
                registryURL: config.registryHost, repository: FleetNames.satelliteStateRepository(name))
            return try Self.json(
                ZTRResult(
                    state: state,
                    auth: RegistryCredentials(
                        url: config.registry.url, username: credential.robot, password: credential.secret)))
        }
    }

    func satellite(_ request: Request) async throws -> (name: String, robot: String, expiresAt: Int64) {
        guard let (user, password) = Self.basic(request) else {
            var error = APIError.unauthorized("Basic credentials of the satellite required")
            error.headers[.wwwAuthenticate] = "Basic realm=\"ground-control\""
            throw error
        }
        let checked = try await repository.countAndAuthenticate(bucket: "cred:" + user, robot: user, secret: password)
        try refuseOverLimit(checked.count)
        guard let found = checked.satellite else {
            throw APIError.unauthorized("invalid satellite credentials")
        }
        return (found.name, user, found.expiresAt)
    }

    func heartbeat(_ request: Request) async throws -> Response {
        let who = try await satellite(request)
        let report = try await Self.decode(Heartbeat.self, request, keys: nil)
        guard report.name.isEmpty || report.name == who.name else {
            throw APIError.forbidden("the report names \(report.name), the credential belongs to \(who.name)")
        }
        guard report.cachedImages.count <= 10_000 else { throw APIError.badRequest("too many cached_images") }
        try await repository.recordHeartbeat(satellite: who.name, report)
        var reply = HeartbeatReply()
        if who.expiresAt - FleetRepository.now() < config.credentialRefreshWindow {
            reply.actions.append(.init(type: HeartbeatReply.Instruction.refreshCredentials))
        }
        return try Self.json(reply)
    }

    func refresh(_ request: Request) async throws -> Response {
        let who = try await satellite(request)
        let credential = try await repository.rotateSecret(who.name)
        return try Self.json(CredentialRefreshResult(secret: credential.secret, expiresAt: Time.rfc3339(credential.expiresAt)))
    }

    /// A fixed one-minute window per credential or token, counted in the database so every
    /// replica shares it. Never per source address: a site's satellites share one NAT.
    func rateLimit(_ bucket: String) async throws {
        try refuseOverLimit(try await repository.countRequest(bucket: bucket))
    }

    func refuseOverLimit(_ count: Int64) throws {
        let limit = config.satelliteRequestsPerMinute
        if count > limit {
            var error = APIError.tooMany("rate limit: \(limit) requests per minute for this credential")
            error.headers[.retryAfter] = "60"
            throw error
        }
    }

    // MARK: admin authentication

    static let roleRank = ["viewer": 0, "admin": 1, "system_admin": 2]

    /// The user behind a Bearer session or Basic credentials, with at least `role`.
    func admin(_ request: Request, role: String) async throws -> String {
        var user: (username: String, role: String)?
        if let token = Self.bearer(request) {
            user = try await repository.session(token: token)
        } else if let (name, password) = Self.basic(request) {
            user = try await repository.verifyUser(username: name, password: password)
        }
        guard let user else {
            var error = APIError.unauthorized("login required")
            error.headers[.wwwAuthenticate] = "Bearer realm=\"ground-control\""
            throw error
        }
        guard (Self.roleRank[user.role] ?? -1) >= (Self.roleRank[role] ?? 99) else {
            throw APIError.forbidden("role \(user.role) may not do this")
        }
        return user.username
    }

    static func bearer(_ request: Request) -> String? {
        guard let value = request.headers[.authorization], value.lowercased().hasPrefix("bearer ") else { return nil }
        let token = value.dropFirst(7).trimmed()
        return token.isEmpty ? nil : token
    }

    static func basic(_ request: Request) -> (String, String)? {
        guard let value = request.headers[.authorization], value.lowercased().hasPrefix("basic "),
            let data = Data(base64Encoded: value.dropFirst(6).trimmed()),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    // MARK: bodies

    static func name(_ context: Context, _ key: String) throws -> String {
        let value = try context.parameters.require(key)
        guard FleetNames.isValid(value) else { throw APIError.badRequest("invalid \(key) name") }
        return value
    }

    static func body(_ request: Request) async throws -> JSON {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: maxBody) } catch {
            throw APIError(.contentTooLarge, "request body over \(maxBody) bytes")
        }
        do { return try JSON.parse(Array(buffer.readableBytesView)) } catch {
            throw APIError.badRequest("invalid JSON: \(error)")
        }
    }

    /// Decodes a JSON object body; with `keys`, a member not named there is refused.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, keys: Set<String>?) async throws -> T {
        let tree = try await body(request)
        guard case .object(let members) = tree else { throw APIError.badRequest("the body must be a JSON object") }
        if let keys, let unknown = members.first(where: { !keys.contains($0.0) }) {
            throw APIError.badRequest("unknown field \(unknown.0)")
        }
        do { return try JSONCoder.decode(T.self, from: tree) } catch {
            throw APIError.badRequest("invalid request: \(error)")
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let bytes = try JSONCoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func text(_ value: String, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: value)))
    }

    // MARK: metrics

    func metrics() async throws -> Response {
        let satellites = try await repository.listSatellites()
        let groups = try await repository.listGroups()
        var byState: [String: Int] = ["in_sync": 0, "drifting": 0, "stale": 0, "never_seen": 0]
        for s in satellites { byState[s.state, default: 0] += 1 }
        var lines = [
            "# HELP gc_satellites Satellites by state.", "# TYPE gc_satellites gauge",
        ]
        for (state, count) in byState.sorted(by: { $0.key < $1.key }) {
            lines.append("gc_satellites{state=\"\(state)\"} \(count)")
        }
        let spent = satellites.filter { $0.link?.budgetSpent == true }.count
        lines += [
            "# HELP gc_satellites_budget_spent Satellites whose newest heartbeat says a WAN budget (day or month) has nothing left.",
            "# TYPE gc_satellites_budget_spent gauge", "gc_satellites_budget_spent \(spent)",
            "# HELP gc_groups Groups.", "# TYPE gc_groups gauge", "gc_groups \(groups.count)",
            "# HELP gc_state_publish_failures_total State artifact pushes that failed (this replica).",
            "# TYPE gc_state_publish_failures_total counter",
            "gc_state_publish_failures_total \(publisher.failures)",
        ]
        return Self.text(lines.joined(separator: "\n") + "\n", contentType: "text/plain; version=0.0.4")
    }
}
