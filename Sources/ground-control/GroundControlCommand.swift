import ArgumentParser
import Fleet
import FoundationEssentials
import GroundControl
import Hummingbird
import HummingbirdCore
import JSONCoding
import Logging


@main
struct GroundControlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ground-control",
        abstract: "The fleet server of satellite-lite and Harbor Satellite satellites.",
        subcommands: [Serve.self, SatelliteCommand.self, GroupCommand.self, Status.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the API (SQLite in ./ground-control-data and 127.0.0.1:8080 without a config).")

    @Option(help: "JSON config file") var config: String?

    func run() async throws {
        var logger = Logger(label: "ground-control")
        logger.logLevel = .info
        let settings: GroundControlConfig
        let server: HTTPServerBuilder
        do {
            settings = try GroundControlConfig.load(path: config)
            server = try settings.serverBuilder()
        } catch {
            throw ValidationError("\(error)")
        }
        let database = try await FleetDatabase.open(url: settings.database, logger: logger)
        let repository = FleetRepository(database: database, config: settings)
        do {
            let given = ProcessInfo.processInfo.environment["GC_ADMIN_PASSWORD"]
            if let made = try await repository.bootstrapAdmin(password: given) {
                print("ground-control: created user admin with password \(made) (shown once; change it or set GC_ADMIN_PASSWORD)")
            }
            var issuer: TokenIssuer?
            if settings.registry.kind == "distribution" {
                issuer = try TokenIssuer.loadOrCreate(
                    keyFile: settings.resolvedTokenKeyFile, certFile: settings.resolvedTokenCertFile,
                    service: settings.registry.service, issuer: settings.registry.issuer)
            }
            let publisher = StatePublisher(repository: repository, config: settings, tokenIssuer: issuer, logger: logger)
            let app = buildApplication(
                config: settings, repository: repository, publisher: publisher, tokenIssuer: issuer, logger: logger,
                server: server)
            try await app.runService()
        } catch {
            await database.shutdown()
            throw error
        }
        await database.shutdown()
    }
}

/// Options of the verbs that call a running ground-control's API.
struct APIOptions: ParsableArguments {
    @Option(help: "ground-control's URL") var url = ProcessInfo.processInfo.environment["GC_URL"] ?? "http://127.0.0.1:8080"
    @Option(help: "user name") var user = ProcessInfo.processInfo.environment["GC_USER"] ?? "admin"
    @Option(help: "password (default: $GC_PASSWORD, then $GC_ADMIN_PASSWORD)")
    var password = ProcessInfo.processInfo.environment["GC_PASSWORD"]
        ?? ProcessInfo.processInfo.environment["GC_ADMIN_PASSWORD"] ?? ""

    func call(_ method: String, _ path: String, body: JSON? = nil) async throws -> JSON {
        var base = Substring(url)
        while base.hasSuffix("/") { base.removeLast() }
        var headers = [("Authorization", "Basic " + Base64.encode(Array("\(user):\(password)".utf8)))]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let answer: OutboundHTTP.Answer
        do { answer = try await OutboundHTTP.send(method, base + path, headers: headers, body: body?.serialized()) } catch {
            throw CLIError("cannot reach ground-control at \(url): \(error)")
        }
        let status = answer.status
        let data = answer.body
        let tree = data.isEmpty ? JSON.null : ((try? JSON.parse(data)) ?? .string(String(decoding: data, as: UTF8.self)))
        guard (200..<300).contains(status) else {
            if case .string(let message)? = tree["message"] { throw CLIError("\(status): \(message)") }
            throw CLIError("\(method) \(path): HTTP \(status)")
        }
        return tree
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct SatelliteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "satellite", abstract: "Manage satellites.", subcommands: [Add.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a satellite; prints its one-time join token.")
        @OptionGroup var api: APIOptions
        @Argument var name: String
        @Option(name: .customLong("group"), help: "a group it belongs to (repeatable)") var groups: [String] = []
        @Option(help: "the config it follows") var config: String?

        func run() async throws {
            var body: [(String, JSON)] = [("name", .string(name)), ("groups", .array(groups.map { .string($0) }))]
            if let config { body.append(("config_name", .string(config))) }
            let answer = try await api.call("POST", "/api/satellites", body: .object(body))
            guard case .string(let token)? = answer["token"] else { throw CLIError("no token in the answer") }
            print(token)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a satellite.")
        @OptionGroup var api: APIOptions
        @Argument var name: String
        func run() async throws { _ = try await api.call("DELETE", "/api/satellites/\(name)") }
    }
}

struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group", abstract: "Manage groups.", subcommands: [Sync.self])

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the images a group must hold.")
        @OptionGroup var api: APIOptions
        @Argument var name: String
        @Option(name: .customLong("image"), help: "repository:tag or repository@sha256:… (repeatable)")
        var images: [String] = []

        func run() async throws {
            var artifacts: [JSON] = []
            for image in images {
                var repository = image
                var tags: [JSON] = []
                var digest = ""
                if let at = image.firstIndex(of: "@") {
                    digest = String(image[image.index(after: at)...])
                    repository = String(image[..<at])
                } else if let colon = image.lastIndex(of: ":"), !image[colon...].contains("/") {
                    tags = [.string(String(image[image.index(after: colon)...]))]
                    repository = String(image[..<colon])
                } else {
                    tags = [.string("latest")]
                }
                var entry: [(String, JSON)] = [("repository", .string(repository)), ("type", .string("IMAGE"))]
                if !tags.isEmpty { entry.append(("tag", .array(tags))) }
                if !digest.isEmpty { entry.append(("digest", .string(digest))) }
                artifacts.append(.object(entry))
            }
            _ = try await api.call(
                "POST", "/api/groups/sync", body: .object([("group", .string(name)), ("artifacts", .array(artifacts))]))
            print("group \(name): \(images.count) image(s)")
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Every satellite with its state.")
    @OptionGroup var api: APIOptions
    @Flag(help: "print the API's JSON") var json = false

    func run() async throws {
        let answer = try await api.call("GET", "/api/satellites")
        if json {
            print(answer.text(pretty: true))
            return
        }
        guard case .array(let satellites) = answer else { throw CLIError("unexpected answer") }
        /// `text` cut or padded with spaces to `width` characters.
        func column(_ text: String, _ width: Int) -> String {
            text.count >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - text.count)
        }
        print(column("NAME", 24) + column("STATE", 12) + "LAST SEEN")
        for s in satellites {
            func field(_ k: String) -> String { if case .string(let v)? = s[k] { return v } else { return "-" } }
            print(column(field("name"), 24) + column(field("state"), 12) + field("last_seen"))
        }
    }
}
