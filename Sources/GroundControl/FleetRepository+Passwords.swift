import FoundationEssentials
import SQLKit

/// Harbor Satellite's user routes beyond create, list and delete: one user, and password
/// changes (each ends every session of the user, as Harbor Satellite's do).
extension FleetRepository {
    public func user(_ username: String) async throws -> UserView {
        guard
            let row = try await database.withDatabase({ db in
                try await db.raw("SELECT username, role, created_at FROM gc_users WHERE username = \(bind: username)").first()
            })
        else { throw APIError.notFound("no user \(username)") }
        return UserView(
            username: try row.decode(column: "username", as: String.self),
            role: try row.decode(column: "role", as: String.self),
            createdAt: Time.rfc3339(try row.decode(column: "created_at", as: Int64.self)))
    }

    /// Sets a new password and ends the user's sessions, in one transaction.
    public func setPassword(username: String, password: String) async throws {
        guard password.count >= 8, password.utf8.count <= 256 else {
            throw APIError.badRequest("a password has 8 to 256 characters")
        }
        let hash = try Secrets.hashPassword(password, iterations: config.passwordIterations)
        try await database.transaction { db in
            guard try await db.raw("SELECT username FROM gc_users WHERE username = \(bind: username)").first() != nil
            else { throw APIError.notFound("no user \(username)") }
            try await db.raw(
                "UPDATE gc_users SET password_hash = \(bind: hash), failed_attempts = 0, locked_until = 0 WHERE username = \(bind: username)"
            ).run()
            try await db.raw("DELETE FROM gc_sessions WHERE username = \(bind: username)").run()
        }
    }
}
