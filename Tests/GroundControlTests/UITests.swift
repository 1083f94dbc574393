import Fleet
import Foundation
import GroundControl
import Hummingbird
import HummingbirdTesting
import JSONCoding
import SQLKit
import Testing

/// The fleet page through Hummingbird's router: redirects, the login form and its
/// anti-forgery checks, cookies, escaping of what satellites report. The real browser
/// run is Tests/e2e/gc_fleet_page.sh.
@Suite struct UITests {
    static let host = "localhost"  // the authority of HummingbirdTesting's router requests

    /// `name=value` of every Set-Cookie named `name` in `response`.
    static func setCookies(_ response: TestResponse, _ name: String) -> [String] {
        response.headers[values: .setCookie].filter { $0.hasPrefix(name + "=") }
    }

    static func cookieValue(_ header: String) -> String {
        let pair = header.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        return pair.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
    }

    static func text(_ response: TestResponse) -> String { String(buffer: response.body) }

    static func form(_ fields: [(String, String)]) -> ByteBuffer {
        ByteBuffer(
            string: fields.map { k, v in
                k + "=" + (v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            }.joined(separator: "&"))
    }

    static func sessions(_ repository: FleetRepository) async throws -> Int64 {
        try await APITests.count(repository, "gc_sessions")
    }

    @Test(arguments: TestDatabases.Kind.enabled)
    func loginOverviewDetailLogout(kind: TestDatabases.Kind) async throws {
        let h = try await APITests.harness(kind)
        defer { Task { await h.repository.database.shutdown() } }
        try await h.app.test(.router) { client in
            // A hostile activity text and a satellite that never reports.
            try await client.execute(
                uri: "/api/groups/sync", method: .post, headers: APITests.admin,
                body: APITests.body(
                    #"{"group":"ships","artifacts":[{"repository":"library/nginx","tag":["1.27"],"type":"IMAGE"}]}"#)
            ) { #expect($0.status == .ok) }
            var token = ""
            try await client.execute(
                uri: "/api/satellites", method: .post, headers: APITests.admin,
                body: APITests.body(#"{"name":"edge-01","groups":["ships"]}"#)
            ) { if case .string(let t)? = APITests.json($0)["token"] { token = t } }
            try await client.execute(
                uri: "/api/satellites", method: .post, headers: APITests.admin, body: APITests.body(#"{"name":"edge-02"}"#)
            ) { #expect($0.status == .ok) }
            var credentials = RegistryCredentials(url: "", username: "", password: "")
            try await client.execute(uri: "/satellites/ztr/\(token)", method: .get) { response in
                credentials = try JSONCoder.decode(ZTRResult.self, from: Array(response.body.readableBytesView)).auth
            }
            let report = Heartbeat(
                name: "edge-01", activity: "<script>alert('x')</script> & \"quoted\"", stateReportInterval: "@every 00h00m30s",
                latestStateDigest: "sha256:" + String(repeating: "b", count: 64), storageUsedBytes: 3 << 20,
                imageCount: 1, cachedImages: [CachedImage(reference: "library/nginx:1.27", sizeBytes: 2048)])
            try await client.execute(
                uri: "/satellites/sync", method: .post,
                headers: [.authorization: APITests.basic(credentials.username, credentials.password)],
                body: ByteBuffer(bytes: try JSONCoder.encode(report))
            ) { #expect($0.status == .ok) }

            // No session: every page sends the browser to the login form.
            for uri in ["/ui", "/ui/", "/ui/satellites/edge-01", "/ui/?state=stale"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .seeOther, "\(uri)")
                    #expect(response.headers[.location] == "/ui/login", "\(uri)")
                }
            }
            // A made-up session cookie is no session.
            try await client.execute(uri: "/ui/", method: .get, headers: [.cookie: "gc_session=deadbeef"]) {
                #expect($0.status == .seeOther)
            }

            // The login form sets the anti-forgery cookie.
            var csrf = ""
            try await client.execute(uri: "/ui/login", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                #expect(response.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
                let cookie = Self.setCookies(response, "gc_csrf").first ?? ""
                #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
                csrf = Self.cookieValue(cookie)
                #expect(Self.text(response).contains(#"name="csrf" value="\#(csrf)""#))
            }
            #expect(csrf.count == 32)
            let good: [(String, String)] = [("csrf", csrf), ("username", "admin"), ("password", APITests.adminPassword)]
            let browser: HTTPFields = [
                .cookie: "gc_csrf=\(csrf)", .origin: "http://\(Self.host)",
                .contentType: "application/x-www-form-urlencoded",
            ]

            // Cross-site: a foreign Origin, a missing or wrong token, no cookie: 403, no session.
            var foreign = browser
            foreign[.origin] = "http://evil.example"
            var noCookie = browser
            noCookie[.cookie] = nil
            let refused: [(HTTPFields, [(String, String)])] = [
                (foreign, good), (browser, Array(good.dropFirst())), (browser, [("csrf", (csrf.hasPrefix("0") ? "1" : "0") + csrf.dropFirst())] + good.dropFirst()),
                (noCookie, good),
            ]
            for (headers, fields) in refused {
                try await client.execute(uri: "/ui/login", method: .post, headers: headers, body: Self.form(fields)) { response in
                    #expect(response.status == .forbidden)
                    #expect(Self.setCookies(response, "gc_session").isEmpty)
                }
            }
            #expect(try await Self.sessions(h.repository) == 0)

            // A wrong password: the form again, with the reason.
            try await client.execute(
                uri: "/ui/login", method: .post, headers: browser,
                body: Self.form([("csrf", csrf), ("username", "admin"), ("password", "wrong-password")])
            ) { response in
                #expect(response.status == .unauthorized)
                #expect(Self.text(response).contains("invalid username or password"))
            }

            // Signing in: a session cookie, HttpOnly and SameSite=Strict, Secure only over HTTPS.
            var session = ""
            try await client.execute(uri: "/ui/login", method: .post, headers: browser, body: Self.form(good)) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/ui/")
                let cookie = Self.setCookies(response, "gc_session").first ?? ""
                #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui"))
                #expect(!cookie.contains("Secure"))
                session = Self.cookieValue(cookie)
            }
            var https = browser
            https[.origin] = "https://\(Self.host)"
            https[.init("X-Forwarded-Proto")!] = "https"
            try await client.execute(uri: "/ui/login", method: .post, headers: https, body: Self.form(good)) { response in
                #expect(response.status == .seeOther)
                #expect(Self.setCookies(response, "gc_session").first?.contains("Secure") == true)
            }
            let signedIn: HTTPFields = [.cookie: "gc_csrf=\(csrf); gc_session=\(session)"]

            // The overview: counters, states, the group's image.
            try await client.execute(uri: "/ui/", method: .get, headers: signedIn) { response in
                #expect(response.status == .ok)
                let page = Self.text(response)
                #expect(page.contains(#"id="count-total" href="/ui/"><b>2</b>"#))
                #expect(page.contains(#"id="count-in_sync" href="/ui/?state=in_sync"><b>1</b>"#))
                #expect(page.contains(#"id="count-never_seen" href="/ui/?state=never_seen"><b>1</b>"#))
                #expect(page.contains(##"id="count-groups" href="#groups"><b>1</b>"##))
                #expect(page.contains(#"data-state="in_sync">in sync</span>"#))
                #expect(page.contains(#"data-state="never_seen">never seen</span>"#))
                #expect(page.contains("<li>library/nginx:1.27 "))
            }
            // A browser that lost its anti-forgery cookie (restarted) but kept the session gets
            // a new one with the page, and the page's forms carry it.
            try await client.execute(uri: "/ui/", method: .get, headers: [.cookie: "gc_session=\(session)"]) { response in
                #expect(response.status == .ok)
                let fresh = Self.cookieValue(Self.setCookies(response, "gc_csrf").first ?? "")
                #expect(fresh.count == 32 && fresh != csrf)
                #expect(Self.text(response).contains(#"name="csrf" value="\#(fresh)""#))
            }
            try await client.execute(uri: "/ui/", method: .get, headers: signedIn) {
                #expect(Self.setCookies($0, "gc_csrf").isEmpty)
            }
            try await client.execute(uri: "/ui/?state=never_seen", method: .get, headers: signedIn) { response in
                let page = Self.text(response)
                #expect(page.contains(#"data-satellite="edge-02""#))
                #expect(!page.contains(#"data-satellite="edge-01""#))
            }

            // The detail page escapes what the satellite reported.
            try await client.execute(uri: "/ui/satellites/edge-01", method: .get, headers: signedIn) { response in
                #expect(response.status == .ok)
                let page = Self.text(response)
                #expect(!page.contains("<script>"))
                #expect(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"))
                #expect(page.contains(#"<dd id="storage">3.0 MiB</dd>"#))
                #expect(page.contains("<code>library/nginx:1.27</code>"))
                #expect(page.contains(#"<table id="heartbeats">"#))
            }
            try await client.execute(uri: "/ui/satellites/nope", method: .get, headers: signedIn) {
                #expect($0.status == .notFound)
                #expect(Self.text($0).contains("no satellite nope"))
            }
            try await client.execute(uri: "/ui/satellites/..%2Fx", method: .get, headers: signedIn) {
                #expect($0.status == .badRequest)
            }

            // Logout needs the token too; then the session is gone from the database.
            try await client.execute(
                uri: "/ui/logout", method: .post,
                headers: [.cookie: "gc_csrf=\(csrf); gc_session=\(session)", .origin: "http://evil.example"],
                body: Self.form([("csrf", csrf)])
            ) { #expect($0.status == .forbidden) }
            try await client.execute(uri: "/ui/", method: .get, headers: signedIn) { #expect($0.status == .ok) }
            var logout = signedIn
            logout[.contentType] = "application/x-www-form-urlencoded"
            try await client.execute(uri: "/ui/logout", method: .post, headers: logout, body: Self.form([("csrf", csrf)])) {
                #expect($0.status == .seeOther)
                #expect($0.headers[.location] == "/ui/login")
            }
            try await client.execute(uri: "/ui/", method: .get, headers: signedIn) { #expect($0.status == .seeOther) }
        }
    }

    /// The list (three queries for the whole fleet, used by the overview, /api/satellites
    /// and /metrics) says what the per-satellite status says, for every state.
    @Test(arguments: TestDatabases.Kind.enabled)
    func listAgreesWithEachStatus(kind: TestDatabases.Kind) async throws {
        let repository = try await TestDatabases.open(kind)
        defer { Task { await repository.database.shutdown() } }
        let artifacts = [
            GroupArtifact(repository: "library/nginx", tag: ["1.27"]),
            GroupArtifact(repository: "library/redis", digest: "sha256:" + String(repeating: "c", count: 64)),
            GroupArtifact(repository: "library/gone", tag: ["1"], deleted: true),
        ]
        for (group, wanted) in [("ships", artifacts), ("ports", [artifacts[0]])] {
            let body: JSON = .object([
                ("group", .string(group)), ("registry", .string("r.example")),
                ("artifacts", try JSON.parse(try JSONCoder.encode(wanted))),
            ])
            _ = try await repository.syncGroup(try JSONCoder.decode(GroupSyncRequest.self, from: body))
        }
        for name in ["a-in-sync", "b-drifting", "c-stale", "d-never", "e-no-group"] {
            let groups = name == "e-no-group" ? [] : name == "a-in-sync" ? ["ships", "ports"] : ["ships"]
            _ = try await repository.createSatellite(name: name, groups: groups, configName: nil)
        }
        let all = [
            CachedImage(reference: "r.example/library/nginx:1.27", sizeBytes: 1),
            CachedImage(reference: "library/redis@sha256:" + String(repeating: "c", count: 64), sizeBytes: 1),
        ]
        for (name, images) in [("a-in-sync", all), ("b-drifting", [all[0]]), ("c-stale", all), ("e-no-group", [all[0]])] {
            // Two heartbeats: the list must judge by the newest.
            try await repository.recordHeartbeat(satellite: name, Heartbeat(name: name, activity: "old", cachedImages: []))
            try await Task.sleep(for: .milliseconds(5))
            try await repository.recordHeartbeat(
                satellite: name,
                Heartbeat(name: name, activity: "new", stateReportInterval: "@every 00h00m30s", cachedImages: images))
        }
        try await repository.database.withDatabase { db in
            try await db.raw("UPDATE gc_satellites SET last_seen = last_seen - 3600 WHERE name = 'c-stale'").run()
        }
        let list = try await repository.listSatellites()
        #expect(list.map(\.name) == ["a-in-sync", "b-drifting", "c-stale", "d-never", "e-no-group"])
        #expect(list.map(\.state) == ["in_sync", "drifting", "stale", "never_seen", "in_sync"])
        for view in list {
            #expect(view == (try await repository.satellite(view.name)))
            let status = try await repository.satelliteStatus(view.name)
            #expect(status.state == view.state)
            #expect(status.lastSeen == view.lastSeen)
        }
    }

    /// Served over TLS (`tls.certFile`), every cookie of the page is Secure.
    @Test func cookiesAreSecureWhenServingTLS() async throws {
        var config = TestDatabases.testConfig()
        config.tlsCertFile = "/etc/ground-control/tls.crt"
        config.tlsKeyFile = "/etc/ground-control/tls.key"
        let h = try await APITests.harness(.sqlite, config: config)
        defer { Task { await h.repository.database.shutdown() } }
        try await h.app.test(.router) { client in
            var csrf = ""
            try await client.execute(uri: "/ui/login", method: .get) { response in
                let cookie = Self.setCookies(response, "gc_csrf").first ?? ""
                #expect(cookie.contains("Secure"))
                csrf = Self.cookieValue(cookie)
            }
            try await client.execute(
                uri: "/ui/login", method: .post,
                headers: [
                    .cookie: "gc_csrf=\(csrf)", .origin: "https://\(Self.host)",
                    .contentType: "application/x-www-form-urlencoded",
                ],
                body: Self.form([("csrf", csrf), ("username", "admin"), ("password", APITests.adminPassword)])
            ) { response in
                #expect(response.status == .seeOther)
                #expect(Self.setCookies(response, "gc_session").first?.contains("Secure") == true)
            }
        }
    }
}
