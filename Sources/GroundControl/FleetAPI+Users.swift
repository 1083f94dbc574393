import Hummingbird

/// Bodies of Harbor Satellite's password routes (its ChangePasswordRequest and
/// ChangeUserPasswordRequest).
struct PasswordChangeRequest: Codable, Sendable {
    var currentPassword: String
    var newPassword: String
    enum CodingKeys: String, CodingKey {
        case currentPassword = "current_password"
        case newPassword = "new_password"
    }
}

struct PasswordResetRequest: Codable, Sendable {
    var newPassword: String
    enum CodingKeys: String, CodingKey {
        case newPassword = "new_password"
    }
}

extension FleetAPI {
    /// `GET /api/users/{username}`, `PATCH /api/users/password` (one's own, with the current
    /// one) and `PATCH /api/users/{username}/password` (system_admin), as Harbor Satellite
    /// routes them; both password changes end the user's sessions (204).
    func registerUserRoutes(on api: RouterGroup<Context>) {
        api.get("users/:username") { request, context in
            _ = try await admin(request, role: "viewer")
            return try Self.json(try await repository.user(Self.name(context, "username")))
        }
        api.patch("users/password") { request, _ in
            let me = try await admin(request, role: "viewer")
            let body = try await Self.decode(
                PasswordChangeRequest.self, request, keys: ["current_password", "new_password"])
            do { _ = try await repository.verifyUser(username: me, password: body.currentPassword) } catch let error
                as APIError where error.status == .unauthorized
            {
                throw APIError.unauthorized("the current password is wrong")
            }
            try await repository.setPassword(username: me, password: body.newPassword)
            return Response(status: .noContent)
        }
        api.patch("users/:username/password") { request, context in
            _ = try await admin(request, role: "system_admin")
            let name = try Self.name(context, "username")
            let body = try await Self.decode(PasswordResetRequest.self, request, keys: ["new_password"])
            try await repository.setPassword(username: name, password: body.newPassword)
            return Response(status: .noContent)
        }
    }
}
