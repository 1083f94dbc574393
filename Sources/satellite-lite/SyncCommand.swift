import FleetLink
import Logging
import SatelliteConfig
import Sync
import CommandParsing
import ContentStore
import OCICore
import TinyRegistry

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct SyncCommand: ConfigOnlyCommand {
    static var spec: CommandSpec {
        CommandSpec(
            name: "sync", abstract: "Run one reconcile pass; exit 0 only if the store then holds the whole desired state, 75 if it paused outside sync.windows or over sync.budget.",
            options: [.config])
    }

    var options: ConfigOption

    func run() async throws {
        var settings = try Settings.load(configPath: options.config)
        let logger = Log.make("satellite-lite")
        let store = try BlobStore(configuration: settings.storeConfiguration)
        let fleet = try settings.openFleetLink(store: store, logger: logger)
        let local = settings.localDocument()
        if let fleet {
            // Onboard first (once: a stored link is reused), within the pass's time budget.
            let deadline = MonotonicClock.now() + settings.config.sync.timeout
            let onboarding = Task { try await fleet.onboard(deadline: deadline) }
            let stop = SignalWatcher(signals: [SIGTERM, SIGINT]) { _ in onboarding.cancel() }
            defer { stop.cancel() }
            do {
                _ = try await onboarding.value
            } catch {
                await fleet.shutdown()
                throw CLIError("\(error)")
            }
            settings = settings.withFleet(fleet, local: local).settings
        }
        let started = MonotonicClock.now()
        var client = try settings.makeClient()
        let hooks = try HookBridge.make(settings: settings, store: store, logger: logger)
        var report = try await Self.pass(settings: settings, store: store, client: client, hooks: hooks, logger: logger)
        if let fleet, client.credentialRejectionCount > 0, await fleet.refreshCredentials(reason: "the registry answered 401") {
            await client.shutdown()
            settings = settings.withFleet(fleet, local: local).settings
            client = try settings.makeClient()
            report = try await Self.pass(settings: settings, store: store, client: client, hooks: hooks, logger: logger)
        }
        if let fleet {
            fleet.passFinished(
                durationMs: (MonotonicClock.now() - started) / 1_000_000, complete: report.complete, artifact: report.artifact,
                summary: report.activityLine)
            _ = await fleet.updateRemoteConfig(client: client, local: local)
            await fleet.shutdown()
        }
        await hooks?.drain()
        await client.shutdown()
        client.gate?.flush()
        print(report.summary(bandwidth: settings.bandwidth))
        if !report.complete, let deferral = report.deferred {
            // Not a failure of the link: the WAN is closed. Partial files stay for the next run.
            print("sync: paused: \(deferral.message); partial downloads are kept and continue then")
            throw ExitCode.deferred
        }
        if !report.complete { throw ExitCode.failure }
    }

    /// One pass; SIGTERM/SIGINT cancel it: transfers stop, partial files stay for the next run.
    static func pass(settings: Settings, store: BlobStore, client: UpstreamClient, hooks: HookBridge?, logger: Logger) async throws
        -> SyncEngine.Report
    {
        let engine = try settings.makeEngine(store: store, client: client, events: hooks, logger: logger)
        let pass = Task { await engine.runPass() }
        let stop = SignalWatcher(signals: [SIGTERM, SIGINT]) { signal in
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            pass.cancel()
        }
        defer { stop.cancel() }
        return await pass.value
    }
}

extension ExitCode {
    /// `sync` paused because the WAN is closed (outside `sync.windows`, or `sync.budget`
    /// spent): EX_TEMPFAIL, "try again later".
    static let deferred = ExitCode(status: 75)
}

extension SyncEngine.Report {
    func summary(bandwidth: Int64) -> String {
        var lines = ["sync: \(present)/\(wanted) image(s) present, \(Units.formatSize(bytesDownloaded)) downloaded"]
        for image in updated { lines.append("  updated: \(image)") }
        for image in removed { lines.append("  removed: \(image)") }
        for failure in failures { lines.append("  FAILED \(failure.image): \(failure.error)") }
        return lines.joined(separator: "\n")
    }
}
