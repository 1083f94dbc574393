import Hummingbird
import JSONCoding

/// Every error of the API is JSON `{"message", "code"}`, also the ones Hummingbird makes
/// itself: no route for the path (404), a route without this method (405 with `Allow`, the
/// methods the OpenAPI document names for the path), a parameter it could not read. The
/// fleet page under `/ui` answers for itself.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let path = request.uri.path
            guard path != "/ui", !path.hasPrefix("/ui/") else { throw error }
            // A documented method the router lacks is a route this configuration leaves out
            // (/auth/token with registry.kind = harbor): 404, not 405.
            if error.status == .notFound, let allowed = OpenAPIDocument.documentedMethods(path: path),
                !allowed.contains(request.method.rawValue)
            {
                var refusal = APIError(.methodNotAllowed, "\(request.method) is not served on \(path)")
                refusal.headers[.allow] = allowed.joined(separator: ", ")
                throw refusal
            }
            if error.status == .notFound { throw APIError.notFound("no route \(request.method) \(path)") }
            var wrapped = APIError(error.status, error.body ?? error.status.reasonPhrase)
            wrapped.headers = error.headers
            throw wrapped
        }
    }
}
