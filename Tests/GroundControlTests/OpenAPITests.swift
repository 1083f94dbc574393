import Foundation
import Hummingbird
import HummingbirdTesting
import JSONCoding
import Logging
import Testing

@testable import GroundControl

/// docs/ground-control.openapi.json is the one description of the API: the binary serves
/// exactly it, and it names exactly the routes the router has.
@Suite struct OpenAPITests {
    static var documentPath: String {
        // Tests/GroundControlTests/OpenAPITests.swift -> the repository root.
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/docs/ground-control.openapi.json"
    }

    static func document() throws -> JSON {
        let data = try #require(FileManager.default.contents(atPath: documentPath), "cannot read \(documentPath)")
        return try JSON.parse(Array(data))
    }

    @Test func servedDocumentIsTheFileInDocs() async throws {
        let h = try await APITests.harness(.sqlite)
        defer { Task { await h.repository.database.shutdown() } }
        let file = try #require(FileManager.default.contents(atPath: Self.documentPath))
        try await h.app.test(.router) { client in
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                #expect(Array(response.body.readableBytesView) == Array(file), "rebuild: /openapi.json differs from docs/")
            }
        }
    }

    /// `METHOD /path/{param}` of every operation in the document.
    static func documentedRoutes() throws -> Set<String> {
        guard case .object(let paths)? = try document()["paths"] else { return [] }
        var routes: Set<String> = []
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            for (method, _) in operations where ["get", "put", "post", "delete", "patch", "head"].contains(method) {
                routes.insert("\(method.uppercased()) \(path)")
            }
        }
        return routes
    }

    /// `METHOD /path/{param}` of every route the router serves (both registry kinds).
    static func servedRoutes() async throws -> Set<String> {
        var logger = Logger(label: "gc-test")
        logger.logLevel = .critical
        var config = TestDatabases.testConfig()
        config.registry.kind = "distribution"
        let repository = try await TestDatabases.open(.sqlite, config: config)
        defer { Task { await repository.database.shutdown() } }
        let dir = NSTemporaryDirectory() + "gc-openapi-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let issuer = try TokenIssuer.loadOrCreate(
            keyFile: dir + "/k.pem", certFile: dir + "/c.pem", service: "s", issuer: "i")
        let publisher = StatePublisher(repository: repository, config: config, tokenIssuer: issuer, logger: logger)
        let router = Router(context: BasicRequestContext.self)
        FleetAPI(config: config, repository: repository, publisher: publisher, tokenIssuer: issuer).register(on: router)
        FleetUI(config: config, repository: repository).register(on: router)
        return Set(
            router.routes.map { route in
                let path = route.path.description.split(separator: "/", omittingEmptySubsequences: false).map {
                    $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0)
                }.joined(separator: "/")
                return "\(route.method.rawValue) \(path.hasPrefix("/") ? path : "/" + path)"
            })
    }

    @Test func documentNamesExactlyTheServedRoutes() async throws {
        let documented = try Self.documentedRoutes()
        let served = try await Self.servedRoutes()
        #expect(served.subtracting(documented).sorted() == [], "served but not in docs/ground-control.openapi.json")
        #expect(documented.subtracting(served).sorted() == [], "documented but not served")
    }
}
