import Foundation
import GroundControl
import Hummingbird
import HummingbirdTesting
import JSONCoding
import Testing

/// Harbor Satellite's user routes: one user, one's own password, a user's password set by a
/// system_admin; a password change ends the sessions; Hummingbird's own errors are JSON.
@Suite struct UserRoutesTests {
    static func login(_ client: some TestClientProtocol, _ user: String, _ password: String) async throws -> String {
        try await client.execute(
            uri: "/login", method: .post, body: APITests.body(#"{"username":"\#(user)","password":"\#(password)"}"#)
        ) { response in
            guard case .string(let token)? = APITests.json(response)["token"] else { return "" }
            return token
        }
    }

    @Test(arguments: TestDatabases.Kind.enabled)
    func passwordsAndUsers(kind: TestDatabases.Kind) async throws {
        let h = try await APITests.harness(kind)
        defer { Task { await h.repository.database.shutdown() } }
        try await h.app.test(.router) { client in
            try await client.execute(
                uri: "/api/users", method: .post, headers: APITests.admin,
                body: APITests.body(#"{"username":"ops","password":"ops-password-1","role":"admin"}"#)
            ) { #expect($0.status == .created) }
            try await client.execute(uri: "/api/users/ops", method: .get, headers: APITests.admin) { response in
                #expect(response.status == .ok)
                #expect(APITests.json(response)["role"] == .string("admin"))
            }
            try await client.execute(uri: "/api/users/nobody", method: .get, headers: APITests.admin) {
                #expect($0.status == .notFound)
            }

            // One's own password: the current one is required; the change ends the sessions.
            let session = try await Self.login(client, "ops", "ops-password-1")
            let bearer: HTTPFields = [.authorization: "Bearer \(session)"]
            try await client.execute(
                uri: "/api/users/password", method: .patch, headers: bearer,
                body: APITests.body(#"{"current_password":"wrong-password","new_password":"ops-password-2"}"#)
            ) { #expect($0.status == .unauthorized) }
            try await client.execute(
                uri: "/api/users/password", method: .patch, headers: bearer,
                body: APITests.body(#"{"current_password":"ops-password-1","new_password":"short"}"#)
            ) { #expect($0.status == .badRequest) }
            try await client.execute(
                uri: "/api/users/password", method: .patch, headers: bearer,
                body: APITests.body(#"{"current_password":"ops-password-1","new_password":"ops-password-2"}"#)
            ) { #expect($0.status == .noContent) }
            try await client.execute(uri: "/api/groups", method: .get, headers: bearer) { #expect($0.status == .unauthorized) }
            #expect(try await Self.login(client, "ops", "ops-password-1") == "")
            #expect(try await Self.login(client, "ops", "ops-password-2") != "")

            // A system_admin sets it; an admin may not.
            try await client.execute(
                uri: "/api/users/admin/password", method: .patch,
                headers: [.authorization: APITests.basic("ops", "ops-password-2")],
                body: APITests.body(#"{"new_password":"taken-over-1"}"#)
            ) { #expect($0.status == .forbidden) }
            try await client.execute(
                uri: "/api/users/ops/password", method: .patch, headers: APITests.admin,
                body: APITests.body(#"{"new_password":"ops-password-3"}"#)
            ) { #expect($0.status == .noContent) }
            #expect(try await Self.login(client, "ops", "ops-password-3") != "")
            try await client.execute(
                uri: "/api/users/ghost/password", method: .patch, headers: APITests.admin,
                body: APITests.body(#"{"new_password":"ops-password-3"}"#)
            ) { #expect($0.status == .notFound) }
        }
    }

    @Test func routerErrorsAreJSON() async throws {
        let h = try await APITests.harness(.sqlite)
        defer { Task { await h.repository.database.shutdown() } }
        try await h.app.test(.router) { client in
            try await client.execute(uri: "/no/such/route", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(APITests.json(response)["code"] == .number("404"))
            }
            // The harness runs without a token issuer: /auth/token is documented but not served.
            try await client.execute(uri: "/auth/token", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(APITests.json(response)["code"] == .number("404"))
            }
            try await client.execute(uri: "/api/groups/satellite", method: .get, headers: APITests.admin) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "DELETE, POST")
                #expect(APITests.json(response)["code"] == .number("405"))
            }
        }
    }
}
