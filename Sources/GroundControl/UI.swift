import Fleet
import FoundationEssentials
import OCICore
import Hummingbird
import SQLKit

/// The fleet page at `/ui/`: server-rendered HTML for people, over the same users and
/// sessions as the admin API. No script, no external asset: one inline style sheet.
///
/// Sessions ride in a cookie (`gc_session`: HttpOnly, SameSite=Strict, Path=/ui, Secure
/// when the request came over HTTPS). Every POST form (login, logout) is refused unless
/// it carries the per-browser token of the `gc_csrf` cookie (double submit) and, when the
/// browser names one, an `Origin` naming this host: a cross-site form can do neither.
struct FleetUI: Sendable {
    let config: GroundControlConfig
    let repository: FleetRepository

    typealias Context = BasicRequestContext

    static let sessionCookie = "gc_session"
    static let csrfCookie = "gc_csrf"
    /// Form bodies above this are refused before parsing.
    static let maxForm = 16 << 10

    func register(on router: Router<Context>) {
        router.get("/ui") { request, _ in
            try await signedIn(request) { user in try await overview(request, user: user) }
        }
        router.get("/ui/satellites/:satellite") { request, context in
            let name = try context.parameters.require("satellite")
            return try await signedIn(request) { user in try await detail(request, user: user, name: name) }
        }
        router.get("/ui/login") { request, _ in
            if let token = request.cookies[Self.sessionCookie]?.value,
                try await repository.session(token: token) != nil
            {
                return Self.redirect("/ui/")
            }
            return loginPage(request, message: nil, status: .ok)
        }
        router.post("/ui/login") { request, _ in try await login(request) }
        router.post("/ui/logout") { request, _ in try await logout(request) }
    }

    // MARK: sessions

    /// Runs `page` for the signed-in user, or sends the browser to the login form.
    func signedIn(_ request: Request, _ page: (UIUser) async throws -> Response) async throws -> Response {
        guard let token = request.cookies[Self.sessionCookie]?.value,
            let user = try await repository.session(token: token)
        else { return Self.redirect("/ui/login") }
        let csrf = csrfToken(request)
        var response: Response
        do {
            response = try await page(UIUser(name: user.username, role: user.role, csrf: csrf))
        } catch let error as APIError {
            response = Self.html(
                FleetPage.error(user: user.username, csrf: csrf, status: error.status, message: error.message),
                status: error.status)
        }
        setCSRFCookieIfNew(csrf, request, &response)
        return response
    }

    /// The anti-forgery cookie lives as long as the browser session; the session cookie a
    /// day. A page whose browser lost the first (restarted) sets a new one, so its logout
    /// button keeps working.
    func setCSRFCookieIfNew(_ csrf: String, _ request: Request, _ response: inout Response) {
        guard request.cookies[Self.csrfCookie]?.value != csrf else { return }
        response.setCookie(
            Cookie(
                name: Self.csrfCookie, value: csrf, path: "/ui", secure: isHTTPS(request), httpOnly: true,
                sameSite: .strict))
    }

    func login(_ request: Request) async throws -> Response {
        let form: [String: String]
        do { form = try await Self.form(request) } catch let error as APIError {
            return loginPage(request, message: error.message, status: error.status)
        }
        if let refusal = Self.crossSiteRefusal(request, form: form) {
            return loginPage(request, message: refusal, status: .forbidden)
        }
        let username = form["username"] ?? ""
        let password = form["password"] ?? ""
        guard !username.isEmpty, !password.isEmpty else {
            return loginPage(request, message: "user name and password required", status: .badRequest)
        }
        do {
            let user = try await repository.verifyUser(username: username, password: password)
            let session = try await repository.createSession(username: user.username)
            var response = Self.redirect("/ui/")
            response.setCookie(
                Cookie(
                    name: Self.sessionCookie, value: session.token, maxAge: Int(FleetRepository.sessionSeconds),
                    path: "/ui", secure: isHTTPS(request), httpOnly: true, sameSite: .strict))
            return response
        } catch let error as APIError {
            return loginPage(request, message: error.message, status: error.status)
        }
    }

    func logout(_ request: Request) async throws -> Response {
        let form = (try? await Self.form(request)) ?? [:]
        if let refusal = Self.crossSiteRefusal(request, form: form) {
            return Self.html(
                FleetPage.error(user: nil, csrf: csrfToken(request), status: .forbidden, message: refusal),
                status: .forbidden)
        }
        if let token = request.cookies[Self.sessionCookie]?.value {
            try await repository.deleteSession(token: token)
        }
        var response = Self.redirect("/ui/login")
        response.setCookie(
            Cookie(
                name: Self.sessionCookie, value: "", maxAge: 0, path: "/ui", secure: isHTTPS(request),
                httpOnly: true, sameSite: .strict))
        return response
    }

    func loginPage(_ request: Request, message: String?, status: HTTPResponse.Status) -> Response {
        let csrf = csrfToken(request)
        var response = Self.html(FleetPage.login(csrf: csrf, message: message), status: status)
        setCSRFCookieIfNew(csrf, request, &response)
        return response
    }

    /// The browser's anti-forgery token: its `gc_csrf` cookie, or a new one (set by the
    /// login page, the only page reachable without a session).
    func csrfToken(_ request: Request) -> String {
        if let value = request.cookies[Self.csrfCookie]?.value, value.utf8.count == 32,
            value.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        {
            return value
        }
        return Secrets.randomHex(16)
    }

    /// Why a POST form must be refused as possibly cross-site, or nil.
    ///
    /// The Origin must name this host (either scheme: behind a proxy that terminates TLS
    /// without saying so, the browser's `https://` meets our `http`).
    static func crossSiteRefusal(_ request: Request, form: [String: String]) -> String? {
        if let origin = request.headers[.origin] {
            guard let host = request.head.authority, origin == "http://\(host)" || origin == "https://\(host)" else {
                return "cross-site form refused (Origin \(origin))"
            }
        }
        guard let cookie = request.cookies[csrfCookie]?.value, !cookie.isEmpty, let sent = form["csrf"],
            Secrets.constantTimeEqual(Array(cookie.utf8), Array(sent.utf8))
        else {
            return "the form's anti-forgery token is missing or stale; reload the page and try again"
        }
        return nil
    }

    /// Whether the browser talks HTTPS to us: TLS here (`tls.certFile`; Hummingbird's HTTP/1
    /// codec says `http` even over TLS), or a proxy in front saying so.
    func isHTTPS(_ request: Request) -> Bool {
        config.tlsCertFile != nil || request.head.scheme == "https"
            || request.headers[.init("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    // MARK: pages

    func overview(_ request: Request, user: UIUser) async throws -> Response {
        let satellites = try await repository.listSatellites()
        let groups = try await repository.listGroups()
        var filter = request.uri.queryParameters["state"].map(String.init)
        if let f = filter, !FleetPage.stateNames.keys.contains(f), f != FleetPage.budgetSpent { filter = nil }
        let published = try await repository.publishedDigests()
        return Self.html(
            FleetPage.overview(user: user, satellites: satellites, groups: groups, filter: filter, published: published))
    }

    func detail(_ request: Request, user: UIUser, name: String) async throws -> Response {
        guard FleetNames.isValid(name) else { throw APIError.badRequest("invalid satellite name") }
        let view = try await repository.satellite(name)
        let status = try await repository.satelliteStatus(name)
        let heartbeats = try await repository.heartbeats(satellite: name, limit: 20)
        let published = try await repository.publishedDigests()
        return Self.html(
            FleetPage.detail(user: user, satellite: view, status: status, heartbeats: heartbeats, published: published))
    }

    // MARK: HTTP helpers

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    static func html(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            .contentSecurityPolicy:
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ]
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        headers[.init("Referrer-Policy")!] = "same-origin"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// An `application/x-www-form-urlencoded` body.
    static func form(_ request: Request) async throws -> [String: String] {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: maxForm) } catch {
            throw APIError(.contentTooLarge, "form over \(maxForm) bytes")
        }
        return parseForm(String(decoding: buffer.readableBytesView, as: UTF8.self))
    }

    static func parseForm(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                PercentEncoding.decode(s, plusIsSpace: true) ?? ""
            }
            let key = decode(parts[0])
            if result[key] == nil { result[key] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return result
    }
}

/// Who is looking at a page, and the token their forms carry.
struct UIUser: Sendable {
    var name: String
    var role: String
    var csrf: String
}

extension FleetRepository {
    /// Repository → manifest digest of every state artifact this fleet last pushed.
    func publishedDigests() async throws -> [String: String] {
        try await database.withDatabase { db in
            var result: [String: String] = [:]
            for row in try await db.raw("SELECT repository, digest FROM gc_published").all() {
                result[try row.decode(column: "repository", as: String.self)] = try row.decode(
                    column: "digest", as: String.self)
            }
            return result
        }
    }
}
