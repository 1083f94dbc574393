import Hooks
import Logging
import SatelliteConfig
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum HooksCommand: CLICommandGroup {
    static var spec: CommandSpec {
        CommandSpec(
            name: "hooks", abstract: "Try hooks by hand, run pending hook events, show recent hook runs.",
            subcommands: [.command(Run.self), .command(Drain.self), .command(Status.self)])
    }

    struct Run: CLICommand {
        static var spec: CommandSpec {
            CommandSpec(
                name: "run",
                abstract: "Run the hooks an event triggers, now, and print what each one did.",
                discussion: """
                    Without --journal the hooks run directly: nothing is written to the store. With --journal the \
                    event is journaled in the store and processed like the agent does it (durable, recorded in \
                    `hooks status`). Exit status 1 when no hook matches or a hook fails.
                    """,
                options: [
                    .config,
                    .value(
                        "event", "event", required: true,
                        help: "The event: \(HookEvent.Kind.allCases.map(\.rawValue).joined(separator: ", "))."),
                    .value("image", "image", help: "The image: REPOSITORY:TAG or REPOSITORY@DIGEST."),
                    .value("digest", "digest", help: "SATELLITE_DIGEST (default: the digest of --image, if any)."),
                    .value("previous-digest", "digest", help: "SATELLITE_PREVIOUS_DIGEST."),
                    .value("message", "text", help: "SATELLITE_MESSAGE (e.g. the error of a sync-failed)."),
                    .flag("journal", help: "Journal the event in the store and process it like the agent does."),
                ])
        }

        var options: ConfigOption
        var event: String
        var image: String?
        var digest: String?
        var previousDigest: String?
        var message: String?
        var journal: Bool

        init(_ arguments: ParsedArguments) throws {
            options = ConfigOption(arguments)
            event = arguments.value("event") ?? ""
            image = arguments.value("image")
            digest = arguments.value("digest")
            previousDigest = arguments.value("previous-digest")
            message = arguments.value("message")
            journal = arguments.flag("journal")
            guard let kind = HookEvent.Kind(rawValue: event) else {
                throw ValidationError(
                    "\"\(event)\" is not an event; use one of \(HookEvent.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let image, ImageReference(image) == nil {
                throw ValidationError("\"\(image)\" is not REPOSITORY:TAG or REPOSITORY@DIGEST, e.g. library/nginx:1.27")
            }
            if (kind == .imageUpdated || kind == .imageRemoved) && image == nil {
                throw ValidationError("--image is required for \(event)")
            }
        }

        func makeEvent() -> HookEvent {
            var event = HookEvent(kind: HookEvent.Kind(rawValue: self.event) ?? .imageUpdated)
            if let image, let reference = ImageReference(image) {
                event.repository = reference.repository.value
                event.tag = reference.tag ?? ""
                event.digest = reference.digest?.description ?? ""
            }
            if let digest { event.digest = digest }
            event.previousDigest = previousDigest ?? ""
            event.message = message ?? ""
            return event
        }

        func run() async throws {
            let settings = try Settings.load(configPath: options.config)
            let configuration = HooksCommand.runnerConfiguration(settings)
            let event = makeEvent()
            let matching = configuration.hooks.filter { event.triggers($0) }
            guard !matching.isEmpty else {
                throw CLIError(
                    "no hook in \(settings.source) runs for \(event.kind.rawValue)\(event.image.isEmpty ? "" : " of \(event.image)")"
                        + " (\(configuration.hooks.count) hook(s) configured)")
            }
            let logger = HooksCommand.quietLogger()
            let runs: [HookRun]
            if journal {
                let runner = try HookRunner(
                    configuration: configuration,
                    journalDirectory: StoreLayout(root: settings.config.storage.path).hooks, logger: logger)
                guard try runner.enqueue(event) else {
                    print("\(event.kind.rawValue) of \(event.image) is already pending or not a change: nothing journaled")
                    return
                }
                try await HooksCommand.cancellingOnSignal { try await runner.drain() }
                runs = runner.status().recent.filter { $0.event.id == event.id }
            } else {
                runs = try await HooksCommand.cancellingOnSignal {
                    await HookRunner.execute(event, configuration: configuration, logger: logger)
                }
            }
            HooksCommand.printRuns(runs)
            if runs.contains(where: { !$0.succeeded }) { throw ExitCode.failure }
        }
    }

    struct Drain: ConfigOnlyCommand {
        static var spec: CommandSpec {
            CommandSpec(
                name: "drain", abstract: "Run the hook events waiting in the store's journal now (the agent does this by itself).",
                options: [.config])
        }

        var options: ConfigOption

        func run() async throws {
            let settings = try Settings.load(configPath: options.config)
            let runner = try HookRunner(
                configuration: HooksCommand.runnerConfiguration(settings),
                journalDirectory: StoreLayout(root: settings.config.storage.path).hooks,
                logger: HooksCommand.quietLogger())
            let before = runner.status().recent.count
            let pending = runner.status().pending.count
            try await HooksCommand.cancellingOnSignal { try await runner.drain() }
            let runs = Array(runner.status().recent.dropFirst(before))
            print("\(pending) pending event(s), \(runs.count) hook run(s)")
            HooksCommand.printRuns(runs)
            if runs.contains(where: { !$0.succeeded }) { throw ExitCode.failure }
        }
    }

    struct Status: ConfigAndJSONCommand {
        static var spec: CommandSpec {
            CommandSpec(
                name: "status", abstract: "Show pending hook events and the last hook runs.",
                options: [.config, .json])
        }

        var options: ConfigOption
        var json: Bool

        func run() throws {
            let settings = try Settings.load(configPath: options.config)
            let status = HookRunner.status(
                journalDirectory: StoreLayout(root: settings.config.storage.path).hooks)
            if json {
                struct Output: Encodable {
                    let pending: [HookEvent]
                    let recent: [HookRun]
                }
                let output = Output(pending: status.pending, recent: status.recent)
                try printJSON(output)
                return
            }
            print("pending: \(status.pending.count) event(s)")
            for event in status.pending {
                print("  \(event.kind.rawValue) \(event.image) \(event.digest) (id \(event.id))")
            }
            print("recent: \(status.recent.count) run(s)")
            HooksCommand.printRuns(status.recent)
        }
    }

    static func runnerConfiguration(_ settings: Settings) -> HookRunner.Configuration {
        HookRunner.Configuration(
            hooks: settings.config.hooks, defaultTimeout: settings.profile.hooks.timeout,
            registryAddress: settings.config.registry.listen.localAddress)
    }

    /// The hooks' output and status are printed, so the log only says more when asked to
    /// (SATELLITE_LOG_LEVEL).
    static func quietLogger() -> Logger {
        var logger = Log.make("satellite-lite")
        if getenvString("SATELLITE_LOG_LEVEL") == nil { logger.logLevel = .error }
        return logger
    }

    /// Runs `body`, cancelling it on SIGINT/SIGTERM: hooks run in process groups of their
    /// own, so a Ctrl-C reaches them only through this (TERM, then KILL to the group).
    static func cancellingOnSignal<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await body() }
        let watcher = SignalWatcher(signals: [SIGINT, SIGTERM]) { _ in task.cancel() }
        defer { watcher.cancel() }
        return try await task.value
    }

    static func printRuns(_ runs: [HookRun]) {
        for run in runs {
            let image = run.event.image.isEmpty ? "" : " \(run.event.image)"
            print("hook \(run.hookIndex) on \(run.event.kind.rawValue)\(image): \(run.command)")
            var summary = "  \(run.outcome) after \(Units.formatDuration(run.duration)), \(run.outputBytes) byte(s) of output"
            if run.attempt > 1 { summary += ", attempt \(run.attempt)" }
            print(summary)
            let kept = Int64(run.output.utf8.count)
            if run.outputBytes > kept { print("  | [\(run.outputBytes - kept) earlier bytes not kept]") }
            var text = run.output
            if text.hasSuffix("\n") { text.removeLast() }
            if !text.isEmpty {
                for line in text.split(separator: "\n", omittingEmptySubsequences: false) { print("  | \(line)") }
            }
        }
    }
}
